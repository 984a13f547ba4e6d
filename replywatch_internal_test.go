package iq

import (
	"cmp"
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
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
	assert.Empty(t, w.heap, "the watch keeps the contexts it ended")
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
	require.Equal(t, []*replyCtx{other}, w.heap, "the released context is still watched")
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
	assert.Empty(t, w.heap)
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

// TestBugReplyWatchPinnedClosedCallee: the watch's timer, set for a
// reply's deadline and left set when the reply was written, kept its
// whole Callee (its Sender, a stream's buffers) in memory after Close,
// until the timer fired a reply timeout later. The watch is allocated
// apart now, and a pending timer keeps only the watch.
func TestBugReplyWatchPinnedClosedCallee(t *testing.T) {
	const n = 20
	collected := make(chan struct{}, n)
	for range n {
		// A Sender that watches the reply's context, as stream.Conn does.
		c := NewCallee(SenderFunc(func(ctx context.Context, _ *IQ) error {
			_ = ctx.Done()
			return nil
		}), WithReplyTimeout(time.Hour))
		c.Get("urn:example:pin", "q", func(context.Context, *IQ) (*Element, error) { return nil, nil })
		c.Receive(context.Background(), &IQ{ID: "p1", Type: TypeGet, Payload: NewElement("urn:example:pin", "q")})
		require.NoError(t, c.Drain(context.Background()))
		c.replies.mu.Lock()
		require.True(t, c.replies.set, "the watch set no timer: the test tests nothing")
		c.replies.mu.Unlock()
		require.NoError(t, c.Close())
		runtime.AddCleanup(c, func(struct{}) { collected <- struct{}{} }, struct{}{})
	}
	assert.Equal(t, n, collectedCount(collected, n), "closed Callees still in memory")
}

// TestReplyWatchHeapKeepsOrder adds and removes contexts in a random
// order, checking after each step that the heap is a heap and that each
// context knows its index; taking the earliest one after another then
// gives them in deadline order.
func TestReplyWatchHeapKeepsOrder(t *testing.T) {
	var w replyWatch
	rng := rand.New(rand.NewPCG(1, 2))
	var in []*replyCtx
	check := func() {
		t.Helper()
		for i, r := range w.heap {
			require.Equal(t, i, r.index)
			if i > 0 {
				require.GreaterOrEqual(t, r.deadline, w.heap[(i-1)/2].deadline, "heap order at %d", i)
			}
		}
	}
	base := int64(time.Since(callEpoch)) + int64(time.Hour) // none due while the test runs
	for range 600 {
		if len(in) > 0 && rng.IntN(3) == 0 {
			k := rng.IntN(len(in))
			w.remove(in[k])
			require.Equal(t, -1, in[k].index)
			in = append(in[:k], in[k+1:]...)
		} else {
			r := &replyCtx{index: -1, deadline: base + rng.Int64N(int64(time.Hour)), watch: &w}
			w.add(r)
			in = append(in, r)
		}
		check()
	}
	require.NotEmpty(t, in)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer.Stop()
	// Set no later than the earliest deadline (earlier when the context
	// it was set for has left: it then finds nothing due, and is set
	// again).
	assert.LessOrEqual(t, w.at, slices.MinFunc(in, func(a, b *replyCtx) int { return cmp.Compare(a.deadline, b.deadline) }).deadline,
		"the timer is set past the earliest deadline")
	var order []int64
	for len(w.heap) > 0 {
		r := w.heap[0]
		w.removeLocked(r)
		order = append(order, r.deadline)
	}
	assert.Len(t, order, len(in))
	assert.True(t, slices.IsSorted(order), "contexts taken out of deadline order")
}

// TestEndedOrExpired: the one-clock-read check stream.Conn makes of a
// stanza's context agrees with Err and Deadline, for a reply's context
// (which a cancelled request does not end) and a request's.
func TestEndedOrExpired(t *testing.T) {
	t.Run("reply", func(t *testing.T) {
		w := new(replyWatch)
		canceled, cancel := context.WithCancel(context.Background())
		cancel()
		for _, tc := range []struct {
			name   string
			parent context.Context
			d      time.Duration
			want   bool
		}{
			{"deadline ahead", context.Background(), time.Hour, false},
			{"deadline passed", context.Background(), time.Nanosecond, true},
			{"request cancelled, deadline ahead", canceled, time.Hour, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := newReplyCtx(tc.parent, tc.d, w)
				defer r.release()
				time.Sleep(time.Millisecond)
				assert.Equal(t, tc.want, r.EndedOrExpired())
				assert.Equal(t, tc.want, r.Err() != nil, "Err agrees")
				dl, ok := r.Deadline()
				assert.True(t, ok)
				assert.Equal(t, tc.want, !time.Now().Before(dl), "Deadline agrees")
			})
		}
	})
	t.Run("request", func(t *testing.T) {
		const d = 50 * time.Millisecond
		var before, after, errAfter bool
		c := NewCaller(SenderFunc(func(ctx context.Context, _ *IQ) error {
			s, ok := ctx.(*sendCtx)
			require.True(t, ok, "the Sender gets the Caller's own context")
			before = s.EndedOrExpired()
			time.Sleep(d + 20*time.Millisecond)
			after, errAfter = s.EndedOrExpired(), s.Err() != nil
			return nil
		}), WithTimeout(d))
		defer c.Close()
		_, err := c.Request(context.Background(), &IQ{Type: TypeGet, To: "a@example.org", Payload: NewElement("urn:example:e", "q")})
		require.Error(t, err)
		assert.False(t, before, "ended before its deadline")
		assert.True(t, after, "not ended after its deadline")
		assert.True(t, errAfter, "Err agrees")
	})
	t.Run("request past its deadline, timer yet to fire", func(t *testing.T) {
		var call Call
		call.sctx.parent = context.Background()
		call.deadline = int64(time.Since(callEpoch)) - 1
		require.NoError(t, call.sctx.Err(), "nothing ended it yet")
		assert.True(t, call.sctx.EndedOrExpired())
		call.deadline = int64(time.Since(callEpoch)) + int64(time.Hour)
		assert.False(t, call.sctx.EndedOrExpired())
	})
}
