package iq_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

type serveKey struct{}

// listCtx is a Context of a type that cannot be compared: == on two of
// them, as interfaces, panics.
type listCtx struct {
	context.Context
	tags []string
}

// serveCtxCase is a serve context, and how it ends.
type serveCtxCase struct {
	name string
	// make returns the serve context given to Receive, its end, and the
	// Err and Cause a handler's context must then report.
	make func() (ctx context.Context, end func(), wantErr, wantCause error)
	// deadline, if set, is the deadline the handler's context must
	// report.
	deadline bool
}

var errServeEnded = errors.New("serve context ended")

func serveCtxCases() []serveCtxCase {
	values := func() context.Context { return context.WithValue(context.Background(), serveKey{}, "v") }
	return []serveCtxCase{
		{name: "cancel", make: func() (context.Context, func(), error, error) {
			ctx, cancel := context.WithCancel(values())
			return ctx, cancel, context.Canceled, context.Canceled
		}},
		{name: "cancel with cause", make: func() (context.Context, func(), error, error) {
			ctx, cancel := context.WithCancelCause(values())
			return ctx, func() { cancel(errServeEnded) }, context.Canceled, errServeEnded
		}},
		{name: "value over cancel", make: func() (context.Context, func(), error, error) {
			ctx, cancel := context.WithCancelCause(context.Background())
			return context.WithValue(ctx, serveKey{}, "v"), func() { cancel(errServeEnded) }, context.Canceled, errServeEnded
		}},
		{name: "uncomparable type", make: func() (context.Context, func(), error, error) {
			ctx, cancel := context.WithCancelCause(values())
			return listCtx{ctx, []string{"a"}}, func() { cancel(errServeEnded) }, context.Canceled, errServeEnded
		}},
		{name: "deadline cancelled", deadline: true, make: func() (context.Context, func(), error, error) {
			ctx, cancel := context.WithDeadlineCause(values(), time.Now().Add(time.Hour), errServeEnded)
			return ctx, cancel, context.Canceled, context.Canceled
		}},
		{name: "deadline passed", deadline: true, make: func() (context.Context, func(), error, error) {
			ctx, cancel := context.WithTimeoutCause(values(), time.Second, errServeEnded)
			return ctx, func() { <-ctx.Done(); cancel() }, context.DeadlineExceeded, errServeEnded
		}},
	}
}

// TestHandlerContextEndsWithServeContext: a handler's context carries
// its serve context's values and deadline, and ends when the serve
// context does, with its error and cause, for every kind of serve
// context: one the Callee watches (cancellable, no deadline), one it
// derives from as a child (a deadline), and one of a type that cannot be
// compared. Two requests run on each, so that the second finds the
// first's watch.
func TestHandlerContextEndsWithServeContext(t *testing.T) {
	for _, tt := range serveCtxCases() {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			rec := iqtest.NewRecorder()
			c := iq.NewCallee(rec)
			defer c.Close()
			seen := make(chan context.Context, 2)
			c.Get("urn:example:serve", "q", func(ctx context.Context, _ *iq.IQ) (*iq.Element, error) {
				seen <- ctx
				<-ctx.Done()
				return nil, context.Cause(ctx)
			})
			ctx, end, wantErr, wantCause := tt.make()
			for _, id := range []string{"s1", "s2"} {
				c.Receive(ctx, &iq.IQ{Type: iq.TypeGet, ID: id, Payload: iq.NewElement("urn:example:serve", "q")})
			}
			var hctxs []context.Context
			for range 2 {
				hctx := <-seen
				hctxs = append(hctxs, hctx)
				assert.Equal(t, "v", hctx.Value(serveKey{}))
				want, wantOK := ctx.Deadline()
				got, ok := hctx.Deadline()
				assert.Equal(t, tt.deadline, ok)
				assert.Equal(t, wantOK, ok)
				assert.Equal(t, want, got)
				assert.NoError(t, hctx.Err(), "ended before its serve context")
			}
			end()
			for _, hctx := range hctxs {
				select {
				case <-hctx.Done():
				case <-time.After(5 * time.Second):
					t.Fatal("the handler's context did not end with its serve context")
				}
				assert.Equal(t, wantErr, hctx.Err())
				assert.Equal(t, wantCause, context.Cause(hctx))
			}
			require.NoError(t, c.Drain(context.Background()))
			assert.Equal(t, 2, rec.Len())
		})
	}
}

// TestHandlerContextServeContextEndedBefore: a request handed over with
// a serve context that has already ended runs with a context that has
// ended too, from the start, with the serve context's cause: the first
// on it, and one after a running handler's, whose watch's function may
// not have run yet.
func TestHandlerContextServeContextEndedBefore(t *testing.T) {
	tests := []struct {
		name    string
		running bool // a handler runs on the serve context when it ends
	}{
		{"first request", false},
		{"after a watched one", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := iqtest.NewRecorder()
			c := iq.NewCallee(rec)
			defer c.Close()
			type started struct {
				hctx context.Context
				err  error // hctx.Err() as the handler began
			}
			seen := make(chan started, 2)
			c.Get("urn:example:serve", "q", func(ctx context.Context, _ *iq.IQ) (*iq.Element, error) {
				seen <- started{ctx, ctx.Err()}
				<-ctx.Done()
				return nil, nil
			})
			// Rounds, for the watch's function to be still on its way in
			// some: it races the next handler's start.
			for round := range 50 {
				ctx, cancel := context.WithCancelCause(context.Background())
				if tt.running {
					c.Receive(ctx, &iq.IQ{Type: iq.TypeGet, ID: "r1", Payload: iq.NewElement("urn:example:serve", "q")})
					<-seen
				}
				cancel(errServeEnded)
				c.Receive(ctx, &iq.IQ{Type: iq.TypeGet, ID: "r2", Payload: iq.NewElement("urn:example:serve", "q")})
				s := <-seen
				select {
				case <-s.hctx.Done():
				case <-time.After(5 * time.Second):
					t.Fatal("the handler's context did not end")
				}
				assert.Equal(t, errServeEnded, context.Cause(s.hctx), "round %d", round)
				// Ended when the handler began, whether a watch of ctx,
				// about to end it, was there or not.
				assert.ErrorIs(t, s.err, context.Canceled, "round %d", round)
			}
		})
	}
}

// TestHandlerContextCloseAfterServeEnded: when the serve context ends
// and the Callee closes right after, the handler's context reports the
// serve context's cause, which came first, not ErrClosed; when the
// Callee closes first, ErrClosed.
func TestHandlerContextCloseAfterServeEnded(t *testing.T) {
	for _, serveFirst := range []bool{true, false} {
		name := "close first"
		if serveFirst {
			name = "serve context first"
		}
		t.Run(name, func(t *testing.T) {
			c := iq.NewCallee(iqtest.NewRecorder())
			seen := make(chan context.Context, 1)
			c.Get("urn:example:serve", "q", func(ctx context.Context, _ *iq.IQ) (*iq.Element, error) {
				seen <- ctx
				<-ctx.Done()
				return nil, nil
			})
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			c.Receive(ctx, &iq.IQ{Type: iq.TypeGet, ID: "c1", Payload: iq.NewElement("urn:example:serve", "q")})
			hctx := <-seen
			want := iq.ErrClosed
			if serveFirst {
				cancel(errServeEnded)
				want = errServeEnded
			}
			require.NoError(t, c.Close())
			<-hctx.Done()
			assert.Equal(t, want, context.Cause(hctx))
		})
	}
}

// TestHandlerContextManyServeContexts: requests from more serve
// contexts than the Callee keeps watches for, some of them running when
// the others come, each end with their own serve context, and only
// with it.
func TestHandlerContextManyServeContexts(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rec := iqtest.NewRecorder()
	c := iq.NewCallee(rec, iq.WithMaxInFlight(1000))
	defer c.Close()
	type started struct {
		id   string
		hctx context.Context
	}
	seen := make(chan started, 100)
	c.Get("urn:example:serve", "q", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		seen <- started{req.ID, ctx}
		<-ctx.Done()
		return nil, nil
	})
	const n = 50
	cancels := make(map[string]context.CancelCauseFunc, n)
	causes := make(map[string]error, n)
	hctxs := make(map[string]context.Context, n)
	for i := range n {
		ctx, cancel := context.WithCancelCause(context.Background())
		id := string(rune('A' + i))
		cancels[id] = cancel
		causes[id] = errors.New("end of " + id)
		c.Receive(ctx, &iq.IQ{Type: iq.TypeGet, ID: id, Payload: iq.NewElement("urn:example:serve", "q")})
		s := <-seen
		hctxs[s.id] = s.hctx
		if i%2 == 1 { // every other one ends while the next come
			cancel(causes[id])
		}
	}
	for i := range n {
		id := string(rune('A' + i))
		if i%2 == 0 {
			assert.NoError(t, hctxs[id].Err(), "%s ended with another serve context", id)
			cancels[id](causes[id])
		}
	}
	for id, hctx := range hctxs {
		select {
		case <-hctx.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not end with its serve context", id)
		}
		assert.Equal(t, causes[id], context.Cause(hctx), id)
	}
	require.Eventually(t, func() bool { return rec.Len() == n }, 5*time.Second, time.Millisecond)
}

// TestHandlerContextServeEndsUnderLoad: a serve context that ends while
// requests on it start and return on many goroutines leaves no handler
// running on it with a context that has not ended: every handler that
// waits for its context sees it end.
func TestHandlerContextServeEndsUnderLoad(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for round := range 20 {
		rec := iqtest.NewRecorder()
		c := iq.NewCallee(rec, iq.WithMaxInFlight(10000))
		var stuck atomic.Int32
		c.Get("urn:example:serve", "q", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
				stuck.Add(1)
			}
			return nil, nil
		})
		c.Get("urn:example:serve", "quick", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
		ctx, cancel := context.WithCancelCause(context.Background())
		var senders sync.WaitGroup
		for g := range 4 {
			senders.Go(func() {
				for i := range 50 {
					local := "q"
					if i%2 == 0 {
						local = "quick"
					}
					c.Receive(ctx, &iq.IQ{Type: iq.TypeGet, ID: string(rune('a'+g)) + string(rune('0'+i%10)), Payload: iq.NewElement("urn:example:serve", local)})
				}
			})
		}
		if round%2 == 0 {
			time.Sleep(time.Duration(round) * 10 * time.Microsecond)
		}
		cancel(errServeEnded)
		senders.Wait()
		require.NoError(t, c.Drain(context.Background()), "round %d", round)
		assert.Equal(t, 200, rec.Len(), "round %d", round)
		assert.Zero(t, stuck.Load(), "round %d: handlers whose context did not end with the serve context", round)
		require.NoError(t, c.Close())
	}
}
