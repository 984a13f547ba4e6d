package iq

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReplyWatchEndsEachAtItsDeadline watches reply contexts of several
// timeouts, added in an order that makes the watch move its timer earlier
// and leave it: each ends at its own deadline, not before, and what runs
// through its AfterFunc runs once; the watch keeps nothing afterwards.
func TestReplyWatchEndsEachAtItsDeadline(t *testing.T) {
	var w replyWatch
	timeouts := []time.Duration{80 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond, 20 * time.Millisecond}
	type watched struct {
		r     *replyCtx
		ran   atomic.Int32
		ended chan time.Time
	}
	start := time.Now()
	ws := make([]*watched, len(timeouts))
	for i, d := range timeouts {
		x := &watched{r: newReplyCtx(context.Background(), d, &w), ended: make(chan time.Time, 1)}
		x.r.AfterFunc(func() {
			x.ran.Add(1)
			x.ended <- time.Now()
		})
		ws[i] = x
	}
	for i, x := range ws {
		select {
		case at := <-x.ended:
			assert.GreaterOrEqual(t, at.Sub(start), timeouts[i], "context %d ended before its deadline", i)
		case <-time.After(5 * time.Second):
			t.Fatalf("context %d (timeout %v) never ended", i, timeouts[i])
		}
		assert.ErrorIs(t, x.r.Err(), context.DeadlineExceeded)
		select {
		case <-x.r.Done():
		default:
			t.Errorf("context %d: Done not closed after its AfterFunc ran", i)
		}
	}
	for i, x := range ws {
		assert.EqualValues(t, 1, x.ran.Load(), "context %d: AfterFunc runs", i)
		x.r.release()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	assert.Nil(t, w.list, "the watch keeps the contexts it ended")
	assert.False(t, w.set, "timer set with nothing watched")
}

// TestReplyWatchReleasedNeverEnds releases a watched context before its
// deadline: it leaves the watch at once, and what it registered never
// runs, while a context watched beside it still ends at its own.
func TestReplyWatchReleasedNeverEnds(t *testing.T) {
	var w replyWatch
	var ran atomic.Int32
	released := newReplyCtx(context.Background(), 10*time.Millisecond, &w)
	released.AfterFunc(func() { ran.Add(1) })
	other := newReplyCtx(context.Background(), 40*time.Millisecond, &w)
	done := other.Done()

	released.release()
	w.mu.Lock()
	require.Same(t, other, w.list, "the released context is still watched")
	require.Nil(t, other.next)
	w.mu.Unlock()

	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the other context never ended")
	}
	assert.Zero(t, ran.Load(), "a released context's AfterFunc ran")
	other.release()
}

// TestReplyWatchUnwatchedNeedsNoTimer checks that a reply context nobody
// watches takes no place in the watch and still reports its deadline
// once passed, from the clock.
func TestReplyWatchUnwatchedNeedsNoTimer(t *testing.T) {
	var w replyWatch
	r := newReplyCtx(context.Background(), time.Millisecond, &w)
	defer r.release()
	assert.NoError(t, r.Err())
	d, ok := r.Deadline()
	require.True(t, ok)
	time.Sleep(time.Until(d) + time.Millisecond)
	assert.ErrorIs(t, r.Err(), context.DeadlineExceeded)
	assert.False(t, w.set, "a timer set for a context nobody watched")
	assert.Nil(t, w.list)
}

// TestReplyWatchStaleExpireSparesReuse checks expire's guard, which a
// context taken off the watch by fire meets when it was released and
// reused before fire got to end it: its new use, with its deadline ahead,
// does not end.
func TestReplyWatchStaleExpireSparesReuse(t *testing.T) {
	var w replyWatch
	r := newReplyCtx(context.Background(), time.Hour, &w)
	r.AfterFunc(func() { t.Error("the reused context ended") })
	r.expire() // what a fire for its previous use would do now
	assert.NoError(t, r.Err())
	r.release()
}

// BenchmarkReplyCtx is a reply context's life as a Callee and a
// stream.Conn give it one: made, checked, and released, unwatched (a
// Sender that never asks) and watched for a write (AfterFunc, then its
// stop), as stream.Conn does for every reply it writes itself.
//
//	go test -run '^$' -bench ReplyCtx -cpu 1 .
func BenchmarkReplyCtx(b *testing.B) {
	var w replyWatch
	watch := func() {}
	b.Run("unwatched", func(b *testing.B) {
		for b.Loop() {
			r := newReplyCtx(context.Background(), DefaultReplyTimeout, &w)
			_ = r.Err()
			r.release()
		}
	})
	b.Run("watched", func(b *testing.B) {
		for b.Loop() {
			r := newReplyCtx(context.Background(), DefaultReplyTimeout, &w)
			_ = r.Err()
			stop := r.AfterFunc(watch)
			stop()
			r.release()
		}
	})
}
