package iq_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

// drainResult runs c.Drain(ctx) on a goroutine and returns where its
// result arrives.
func drainResult(ctx context.Context, c *iq.Callee) chan error {
	errc := make(chan error, 1)
	go func() { errc <- c.Drain(ctx) }()
	return errc
}

// assertPending checks that nothing arrives on errc for d.
func assertPending(t *testing.T, errc chan error, d time.Duration, what string) {
	t.Helper()
	select {
	case err := <-errc:
		require.FailNow(t, "Drain returned too early", "%s: Drain returned %v", what, err)
	case <-time.After(d):
	}
}

func TestCallee_Drain(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"nothing in flight returns at once", func(t *testing.T) {
			c := iq.NewCallee(iqtest.NewRecorder())
			ctx, cancel := context.WithTimeout(context.Background(), calleeWaitFor)
			defer cancel()
			start := time.Now()
			require.NoError(t, c.Drain(ctx))
			assert.Less(t, time.Since(start), time.Second)
		}},
		{"waits for the handler and for its reply to be handed to the Sender", func(t *testing.T) {
			rec := iqtest.NewRecorder()
			sendGate := make(chan struct{})
			rec.OnSend(func(context.Context, *iq.IQ) error { <-sendGate; return nil })
			c := iq.NewCallee(rec)
			release := make(chan struct{})
			started := make(chan struct{})
			c.Get(calleeNS, "a", func(context.Context, *iq.IQ) (*iq.Element, error) {
				close(started)
				<-release
				return nil, nil
			})
			c.Receive(context.Background(), calleeParse(t, `<iq type='get' id='d1'><a xmlns='u:a'/></iq>`))
			calleeWaitClosed(t, started, "the handler to start")
			drained := drainResult(context.Background(), c)
			assertPending(t, drained, 50*time.Millisecond, "the handler runs")
			close(release)
			nextSent(t, rec) // the reply reached the Sender, which holds it
			assertPending(t, drained, 50*time.Millisecond, "the Sender has not returned")
			close(sendGate)
			select {
			case err := <-drained:
				assert.NoError(t, err)
			case <-time.After(calleeWaitFor):
				require.FailNow(t, "Drain did not return once the reply was sent")
			}
			assert.Equal(t, 0, c.InFlight())
		}},
		{"context ends first", func(t *testing.T) {
			c := iq.NewCallee(iqtest.NewRecorder())
			release := make(chan struct{})
			defer close(release)
			started := make(chan struct{})
			c.Get(calleeNS, "a", func(context.Context, *iq.IQ) (*iq.Element, error) {
				close(started)
				<-release
				return nil, nil
			})
			c.Receive(context.Background(), calleeParse(t, `<iq type='get' id='d1'><a xmlns='u:a'/></iq>`))
			calleeWaitClosed(t, started, "the handler to start")
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			err := c.Drain(ctx)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			// Not a wall-clock bound (a clock read after the context was
			// made can see less than 50 ms): Drain returned no earlier
			// than its context's end.
			assert.ErrorIs(t, ctx.Err(), context.DeadlineExceeded, "Drain returned before its context ended")
			assert.Equal(t, 1, c.InFlight(), "Drain cancels nothing")
		}},
		{"after Close, handlers that heed it end the wait", func(t *testing.T) {
			rec := iqtest.NewRecorder()
			c := iq.NewCallee(rec)
			started := make(chan struct{})
			c.Get(calleeNS, "a", func(ctx context.Context, _ *iq.IQ) (*iq.Element, error) {
				close(started)
				<-ctx.Done()
				return nil, ctx.Err()
			})
			c.Receive(context.Background(), calleeParse(t, `<iq type='get' id='d1'><a xmlns='u:a'/></iq>`))
			calleeWaitClosed(t, started, "the handler to start")
			require.NoError(t, c.Close())
			ctx, cancel := context.WithTimeout(context.Background(), calleeWaitFor)
			defer cancel()
			require.NoError(t, c.Drain(ctx))
			calleeAssertErrorReply(t, nextSent(t, rec), iq.Cancel, iq.InternalServerError)
		}},
		{"a request refused over the cap does not hold the wait", func(t *testing.T) {
			rec := iqtest.NewRecorder()
			c := iq.NewCallee(rec, iq.WithMaxInFlight(1))
			release := make(chan struct{})
			started := make(chan struct{})
			c.Get(calleeNS, "a", func(context.Context, *iq.IQ) (*iq.Element, error) {
				close(started)
				<-release
				return nil, nil
			})
			c.Receive(context.Background(), calleeParse(t, `<iq type='get' id='d1'><a xmlns='u:a'/></iq>`))
			calleeWaitClosed(t, started, "the handler to start")
			c.Receive(context.Background(), calleeParse(t, `<iq type='get' id='d2'><a xmlns='u:a'/></iq>`))
			calleeAssertErrorReply(t, nextSent(t, rec), iq.Wait, iq.ResourceConstraint)
			drained := drainResult(context.Background(), c)
			assertPending(t, drained, 20*time.Millisecond, "the handler runs")
			close(release)
			select {
			case err := <-drained:
				assert.NoError(t, err)
			case <-time.After(calleeWaitFor):
				require.FailNow(t, "Drain did not return")
			}
		}},
		{"many handlers, many drainers", func(t *testing.T) {
			const handlers, drainers = 32, 8
			rec := iqtest.NewRecorder()
			c := iq.NewCallee(rec)
			release := make(chan struct{})
			var started sync.WaitGroup
			started.Add(handlers)
			c.Get(calleeNS, "a", func(context.Context, *iq.IQ) (*iq.Element, error) {
				started.Done()
				<-release
				return nil, nil
			})
			for i := range handlers {
				c.Receive(context.Background(), calleeParse(t, `<iq type='get' id='m`+strconv.Itoa(i)+`'><a xmlns='u:a'/></iq>`))
			}
			started.Wait()
			results := make([]chan error, drainers)
			for i := range results {
				results[i] = drainResult(context.Background(), c)
			}
			assertPending(t, results[0], 20*time.Millisecond, "handlers run")
			close(release)
			for _, r := range results {
				select {
				case err := <-r:
					assert.NoError(t, err)
				case <-time.After(calleeWaitFor):
					require.FailNow(t, "a Drain did not return")
				}
			}
			_, err := rec.WaitFor(handlers, calleeWaitFor)
			require.NoError(t, err)
			assert.Equal(t, handlers, rec.Len(), "every reply was sent before Drain returned")
		}},
		{"nil context panics", func(t *testing.T) {
			c := iq.NewCallee(iqtest.NewRecorder())
			assert.PanicsWithValue(t, "iq: Drain: nil context", func() {
				//lint:ignore SA1012 a nil context is the point of the test
				_ = c.Drain(nil)
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			tc.run(t)
		})
	}
}

// A Drain started right after Receive, while the handler may be starting,
// running or already done, never misses the moment the count reaches zero
// and never returns before the reply was sent.
func TestCallee_DrainRacingReceive(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rec := iqtest.NewRecorder()
	c := iq.NewCallee(rec)
	c.Get(calleeNS, "a", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
	for i := range 200 {
		c.Receive(context.Background(), calleeParse(t, `<iq type='get' id='r`+strconv.Itoa(i)+`'><a xmlns='u:a'/></iq>`))
		ctx, cancel := context.WithTimeout(context.Background(), calleeWaitFor)
		require.NoError(t, c.Drain(ctx), "round %d", i)
		cancel()
		assert.Equal(t, i+1, rec.Len(), "round %d: the reply was sent before Drain returned", i)
	}
}
