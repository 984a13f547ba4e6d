package stream

import (
	"context"
	"testing"
	"time"
)

// ctxEnded reads the clock only for a context with a deadline, and then
// only its monotonic part; it must agree with ctxEndedAt read against a
// full time.Now, the rule the batch uses.
func TestCtxEndedAgreesWithCtxEndedAt(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	future, cancelFuture := context.WithTimeout(context.Background(), time.Hour)
	defer cancelFuture()
	past, cancelPast := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancelPast()
	wall, cancelWall := context.WithDeadline(context.Background(), time.Now().Add(-time.Second).Round(0))
	defer cancelWall()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want bool
	}{
		{"no deadline", context.Background(), false},
		{"canceled", canceled, true},
		{"deadline ahead", future, false},
		{"deadline passed", past, true},
		{"deadline passed, wall clock only", wall, true},
		{"deadline passed, Err not yet set", unfiredCtx{time.Now().Add(-time.Millisecond)}, true},
		{"deadline ahead, Err not set", unfiredCtx{time.Now().Add(time.Hour)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ctxEnded(tc.ctx); got != tc.want {
				t.Errorf("ctxEnded = %v, want %v", got, tc.want)
			}
			if got := ctxEndedAt(tc.ctx, time.Now()); got != tc.want {
				t.Errorf("ctxEndedAt = %v, want %v", got, tc.want)
			}
		})
	}
}

// unfiredCtx has a deadline but an Err that stays nil, as a context whose
// timer has yet to fire.
type unfiredCtx struct{ d time.Time }

func (c unfiredCtx) Deadline() (time.Time, bool) { return c.d, true }
func (unfiredCtx) Done() <-chan struct{}         { return nil }
func (unfiredCtx) Err() error                    { return nil }
func (unfiredCtx) Value(any) any                 { return nil }

var ctxEndedSink bool

// BenchmarkCtxEnded compares ctxEnded with the full clock read it
// replaced (ctxEndedAt with time.Now), for the two contexts a stanza's
// sender has: with a deadline and without.
func BenchmarkCtxEnded(b *testing.B) {
	withDeadline, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{{"deadline", withDeadline}, {"none", context.Background()}} {
		b.Run(c.name+"/ctxEnded", func(b *testing.B) {
			for b.Loop() {
				ctxEndedSink = ctxEnded(c.ctx)
			}
		})
		b.Run(c.name+"/time.Now", func(b *testing.B) {
			for b.Loop() {
				ctxEndedSink = ctxEndedAt(c.ctx, time.Now())
			}
		})
	}
}
