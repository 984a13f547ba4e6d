package iq

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServeWatchLetsGoOfCallee: a Callee served with a context that
// lives on (a program's root context) is not kept in memory by its watch
// of that context: once closed, or, unclosed, once no request has come
// for a few reaper periods.
func TestServeWatchLetsGoOfCallee(t *testing.T) {
	for _, closeIt := range []bool{true, false} {
		name := "unclosed"
		if closeIt {
			name = "closed"
		}
		t.Run(name, func(t *testing.T) {
			serve, cancel := context.WithCancel(context.Background())
			defer cancel()
			const n = 10
			collected := make(chan struct{}, n)
			for range n {
				c := NewCallee(SenderFunc(func(context.Context, *IQ) error { return nil }))
				c.Get("urn:example:pin", "q", func(context.Context, *IQ) (*Element, error) { return nil, nil })
				c.Receive(serve, &IQ{ID: "p1", Type: TypeGet, Payload: NewElement("urn:example:pin", "q")})
				require.NoError(t, c.Drain(context.Background()))
				c.hmu.Lock()
				require.Len(t, c.watches, 1, "no watch: the test tests nothing")
				c.hmu.Unlock()
				if closeIt {
					require.NoError(t, c.Close())
				}
				runtime.AddCleanup(c, func(struct{}) { collected <- struct{}{} }, struct{}{})
			}
			assert.Equal(t, n, collectedCount(collected, n), "Callees still in memory, kept by their serve context")
		})
	}
}

// TestServeWatchesBounded: a Callee given a new serve context for every
// request, each left to live on, keeps no more than maxWatches watches
// of them, and a watch for each that has a handler running.
func TestServeWatchesBounded(t *testing.T) {
	c := NewCallee(SenderFunc(func(context.Context, *IQ) error { return nil }), WithMaxInFlight(1000))
	defer c.Close()
	release := make(chan struct{})
	defer close(release)
	holding := make(chan struct{}, 10)
	c.Get("urn:example:bound", "hold", func(context.Context, *IQ) (*Element, error) {
		holding <- struct{}{}
		<-release
		return nil, nil
	})
	c.Get("urn:example:bound", "q", func(context.Context, *IQ) (*Element, error) { return nil, nil })
	watches := func() int {
		c.hmu.Lock()
		defer c.hmu.Unlock()
		return len(c.watches)
	}
	var cancels []context.CancelFunc
	defer func() {
		for _, cancel := range cancels {
			cancel()
		}
	}()
	const held = 5
	for i := range held {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		c.Receive(ctx, &IQ{ID: "h" + string(rune('0'+i)), Type: TypeGet, Payload: NewElement("urn:example:bound", "hold")})
	}
	for range held {
		<-holding
	}
	for i := range 3 * maxWatches {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		c.Receive(ctx, &IQ{ID: "q" + strconv.Itoa(i), Type: TypeGet, Payload: NewElement("urn:example:bound", "q")})
		// Its handler returned before the next comes, so that its watch
		// is an idle one, which may be stopped: waited for without a
		// ticker, so that many come within a reaper period.
		for c.InFlight() > held {
			runtime.Gosched()
		}
		if n := watches(); n > maxWatches+held || n < held {
			t.Fatalf("%d watches after %d serve contexts, want from %d to %d", n, i+held+1, held, maxWatches+held)
		}
		if i%50 == 0 {
			checkIdleWatches(t, c)
		}
	}
	checkIdleWatches(t, c)
}

type heldKey struct{}

// TestServeWatchLetsGoOfOlderContext: a watch found by its Done channel
// is made with the first serve context that has it, as a pool's streams
// add their own values to one longer-lived context. Once handlers come
// from a newer one only (the next stream's), the older, and its values
// (the older stream), are let go of within a few reaper periods, while
// the watch, kept by a handler running all along, still ends the
// handlers with the context they share.
func TestServeWatchLetsGoOfOlderContext(t *testing.T) {
	c := NewCallee(SenderFunc(func(context.Context, *IQ) error { return nil }))
	defer c.Close()
	seen := make(chan context.Context, 1)
	c.Get("urn:example:pin", "q", func(context.Context, *IQ) (*Element, error) { return nil, nil })
	c.Get("urn:example:pin", "hold", func(ctx context.Context, _ *IQ) (*Element, error) {
		seen <- ctx
		<-ctx.Done()
		return nil, nil
	})
	root, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	collected := make(chan struct{}, 1)
	func() {
		older := new([1 << 16]byte)
		runtime.AddCleanup(older, func(struct{}) { collected <- struct{}{} }, struct{}{})
		c.Receive(context.WithValue(root, heldKey{}, older), &IQ{ID: "o1", Type: TypeGet, Payload: NewElement("urn:example:pin", "q")})
		require.NoError(t, c.Drain(context.Background()))
	}()
	newer := context.WithValue(root, heldKey{}, "newer")
	c.Receive(newer, &IQ{ID: "h1", Type: TypeGet, Payload: NewElement("urn:example:pin", "hold")})
	hctx := <-seen
	assert.Equal(t, "newer", hctx.Value(heldKey{}))
	assert.Equal(t, 1, collectedCount(collected, 1), "the older serve context is still in memory")
	c.hmu.Lock()
	require.Len(t, c.watches, 1, "the test tests nothing: the watch is gone")
	c.hmu.Unlock()
	cause := errors.New("root ended")
	cancel(cause)
	select {
	case <-hctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the handler's context did not end with its serve context")
	}
	assert.Equal(t, cause, context.Cause(hctx))
}

// TestHandlerContextAfterCloseAndServeEnd: a handler that starts after
// both its serve context ended and the Callee closed, in that order (its
// request handed to a worker before either), has a context that ended
// with the serve context's cause, as a child born of it would have.
func TestHandlerContextAfterCloseAndServeEnd(t *testing.T) {
	c := NewCallee(SenderFunc(func(context.Context, *IQ) error { return nil }))
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("serve context ended")
	cancel(cause)
	require.NoError(t, c.Close())
	hctx, stop, id := c.handlerContext(ctx)
	defer c.stopHandler(stop, id)
	assert.Equal(t, cause, context.Cause(hctx))
}

// checkIdleWatches fails t unless c's count of idle watches is right.
func checkIdleWatches(t *testing.T, c *Callee) {
	t.Helper()
	c.hmu.Lock()
	defer c.hmu.Unlock()
	idle := 0
	for _, w := range c.watches {
		if w.refs == 0 {
			idle++
		}
	}
	assert.Equal(t, idle, c.idleWatches, "idle watches counted")
}

// TestServeWatchRecentSparesAllocations: a handler's context costs the
// same allocations whether its requests come from one serve context or
// alternate between a few that share its Done channel, as a pool's
// streams do.
func TestServeWatchRecentSparesAllocations(t *testing.T) {
	c := NewCallee(SenderFunc(func(context.Context, *IQ) error { return nil }))
	defer c.Close()
	root, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctxs := make([]context.Context, 4) // a pool of four streams
	for i := range ctxs {
		ctxs[i] = context.WithValue(root, heldKey{}, i)
	}
	run := func(ctxs []context.Context) float64 {
		i := 0
		return testing.AllocsPerRun(200, func() {
			hctx, stop, id := c.handlerContext(ctxs[i%len(ctxs)])
			i++
			c.stopHandler(stop, id)
			_ = hctx
		})
	}
	one := run(ctxs[:1])
	assert.Equal(t, one, run(ctxs), "allocations with %d serve contexts sharing a watch, against one", len(ctxs))
}
