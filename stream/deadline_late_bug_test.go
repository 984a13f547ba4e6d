package stream_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lateCtx is a context whose deadline has passed but whose timer has not
// fired yet, as with an iq reply context armed by Done (or any context
// whose timer runs late under load): Err is still nil, and the function
// AfterFunc registers has not run.
type lateCtx struct{ d time.Time }

func (l lateCtx) Deadline() (time.Time, bool)       { return l.d, true }
func (lateCtx) Done() <-chan struct{}               { return make(chan struct{}) }
func (lateCtx) Err() error                          { return nil }
func (lateCtx) Value(any) any                       { return nil }
func (lateCtx) AfterFunc(func()) (stop func() bool) { return func() bool { return true } }

// Regression: a sender whose context's deadline had passed, but whose
// timer had not fired yet (Err still nil), had its stanza written: the
// write path asked only Err, and on a context that ends by AfterFunc no
// transport deadline was set. "Never written if its deadline passed
// before the Write that would carry it began" held only once the
// context's own timer had run.
func TestBugStanzaWrittenPastItsDeadlineBeforeItsTimerFired(t *testing.T) {
	for _, tc := range []struct {
		name string
		busy bool // queued behind a write under way, then led by its sender
	}{
		{name: "idle transport"},
		{name: "led after a write under way", busy: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			c, _, peer, aDone := stalled(t)
			if !tc.busy {
				readN(t, peer, len(rawIQ("A")))
				require.NoError(t, recvErr(t, aDone, waitLong))
			}
			late := lateCtx{d: time.Now().Add(-time.Second)}
			if tc.busy {
				// Alive when it queues; past its deadline when handed
				// the lock.
				late.d = time.Now().Add(100 * time.Millisecond)
			}
			lDone := sendRaw(c, late, rawIQ("L"))
			if tc.busy {
				waitQueue(t, c, 1)
				time.Sleep(time.Until(late.d) + 10*time.Millisecond)
				readN(t, peer, len(rawIQ("A")))
				require.NoError(t, recvErr(t, aDone, waitLong))
			}
			assert.ErrorIs(t, recvErr(t, lDone, waitLong), context.DeadlineExceeded)
			bDone := sendRaw(c, context.Background(), rawIQ("B"))
			assert.Equal(t, string(rawIQ("B")), string(readN(t, peer, len(rawIQ("B")))),
				"the next stanza on the wire is B: L was not written")
			require.NoError(t, recvErr(t, bDone, waitLong))
			go func() { _, _ = io.Copy(io.Discard, peer) }()
			require.NoError(t, c.Close())
		})
	}
}
