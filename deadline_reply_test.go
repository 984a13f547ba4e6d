package iq

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// reuseReplyCtx readies r for a use ending d from now, as newReplyCtx
// readies one from the pool.
func reuseReplyCtx(r *replyCtx, d time.Duration) {
	r.reset()
	r.parent = context.Background()
	r.deadline = int64(satAdd(time.Since(callEpoch), d))
}

// TestReplyCtxKeptTimerEndsEachUseAtItsOwnDeadline: a reply context's
// timer outlives its use (see replyCtx); whatever deadline the timer was
// last set for, a watched use ends at its own deadline, not before, and
// an unwatched one reads the clock.
func TestReplyCtxKeptTimerEndsEachUseAtItsOwnDeadline(t *testing.T) {
	const short, long = 40 * time.Millisecond, time.Second
	cases := []struct {
		name        string
		first, next time.Duration
	}{
		{"next use later than the timer", short, long},
		{"next use earlier than the timer", long, short},
		{"same timeout", short, short},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := new(replyCtx)
			reuseReplyCtx(r, short)
			<-r.Done() // a use watched to its end
			require.ErrorIs(t, r.Err(), context.DeadlineExceeded)

			reuseReplyCtx(r, tc.first)
			_ = r.Done() // watched again: the timer is set, then the use ends early
			reuseReplyCtx(r, tc.next)
			start := time.Now()
			deadline, ok := r.Deadline()
			require.True(t, ok)
			assert.WithinDuration(t, start.Add(tc.next), deadline, 20*time.Millisecond)
			require.NoError(t, r.Err())
			select {
			case <-r.Done():
			case <-time.After(5 * time.Second):
				t.Fatalf("not done 5 s after a deadline %v away", tc.next)
			}
			took := time.Since(start)
			assert.GreaterOrEqual(t, took, tc.next-time.Millisecond, "done before its deadline")
			assert.Less(t, took, tc.next+500*time.Millisecond, "done long after its deadline")
			assert.ErrorIs(t, r.Err(), context.DeadlineExceeded)
		})
	}
}

// TestReplyCtxUnwatchedReadsTheClock: a use nobody watches sets no timer
// and still reports its end once its deadline has passed.
func TestReplyCtxUnwatchedReadsTheClock(t *testing.T) {
	r := new(replyCtx)
	reuseReplyCtx(r, 10*time.Millisecond)
	require.NoError(t, r.Err())
	time.Sleep(20 * time.Millisecond)
	assert.ErrorIs(t, r.Err(), context.DeadlineExceeded)
	assert.Nil(t, r.timer, "no timer for a use nobody watched")
}

// TestReplyCtxReleasedUseIsNotEndedByItsTimer: a timer left from a use
// that was released before its deadline ends nothing when it fires.
func TestReplyCtxReleasedUseIsNotEndedByItsTimer(t *testing.T) {
	r := new(replyCtx)
	reuseReplyCtx(r, 10*time.Millisecond)
	_ = r.Done()
	reuseReplyCtx(r, time.Hour) // not watched: the timer, when it fires, stops
	time.Sleep(40 * time.Millisecond)
	assert.NoError(t, r.Err())
	r.mu.Lock()
	defer r.mu.Unlock()
	assert.False(t, r.timerSet, "the timer was set again for a use nobody watches")
}
