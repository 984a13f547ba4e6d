package iq_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

// queuedIQ is what an asyncSender queued: the IQ's id and type (the IQ
// itself is the sender's only until SendIQAsync returns), the context and
// the notifier.
type queuedIQ struct {
	id  string
	typ iq.Type
	ctx context.Context
	n   iq.Notifier
}

// asyncSender is an AsyncSender that queues every IQ, unless refuse is
// set, and leaves the verdicts to the test. What it is given through
// SendIQ goes to sync.
type asyncSender struct {
	queued chan queuedIQ
	sync   chan *iq.IQ
	refuse error // returned by SendIQAsync, with queued false
}

func newAsyncSender() *asyncSender {
	return &asyncSender{queued: make(chan queuedIQ, 16), sync: make(chan *iq.IQ, 16)}
}

func (s *asyncSender) SendIQ(_ context.Context, i *iq.IQ) error {
	s.sync <- i
	return nil
}

func (s *asyncSender) SendIQAsync(ctx context.Context, i *iq.IQ, n iq.Notifier) (bool, error) {
	if s.refuse != nil {
		return false, s.refuse
	}
	s.queued <- queuedIQ{id: i.ID, typ: i.Type, ctx: ctx, n: n}
	return true, nil
}

func (s *asyncSender) next(t *testing.T) queuedIQ {
	t.Helper()
	select {
	case q := <-s.queued:
		return q
	case <-time.After(calleeWaitFor):
		t.Fatal("nothing was queued in time")
		return queuedIQ{}
	}
}

var errBoom = errors.New("boom")

// A Callee whose Sender queues a handler's reply keeps the handler's slot
// until the Sender tells the reply's verdict: InFlight counts it and Drain
// waits for it. A reply not written is logged.
func TestCalleeAsyncReplyKeepsItsSlotUntilTold(t *testing.T) {
	for _, verdict := range []error{nil, errBoom} {
		t.Run(fmt.Sprintf("verdict=%v", verdict), func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			s := newAsyncSender()
			log, logs := newCalleeLogger()
			c := iq.NewCallee(s, iq.WithLogger(log), iq.WithReplyTimeout(time.Minute))
			defer c.Close()
			c.Get("urn:example:a", "q", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
				return req.Payload, nil
			})
			c.Receive(context.Background(), &iq.IQ{ID: "r1", Type: iq.TypeGet, Payload: iq.NewElement("urn:example:a", "q")})
			q := s.next(t)
			assert.Equal(t, "r1", q.id)
			assert.Equal(t, iq.TypeResult, q.typ)
			deadline, ok := q.ctx.Deadline()
			require.True(t, ok, "a reply's context has the reply timeout")
			assert.WithinDuration(t, time.Now().Add(time.Minute), deadline, 10*time.Second)

			assert.Equal(t, 1, c.InFlight(), "the reply is not written yet")
			short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			require.ErrorIs(t, c.Drain(short), context.DeadlineExceeded, "Drain waits for the reply's verdict")

			q.n.Sent(verdict)
			require.NoError(t, c.Drain(context.Background()))
			assert.Equal(t, 0, c.InFlight())
			if verdict != nil {
				assert.Contains(t, logs.String(), "boom")
				assert.Contains(t, logs.String(), "r1")
			} else {
				assert.NotContains(t, logs.String(), "WARN")
			}
			select {
			case i := <-s.sync:
				t.Fatalf("%v was sent through SendIQ as well", i)
			default:
			}
		})
	}
}

// A reply SendIQAsync refuses as not encodable is replaced by
// internal-server-error, as one SendIQ refuses is, and the slot is given
// back once that is sent.
func TestCalleeAsyncReplyThatDoesNotEncode(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := newAsyncSender()
	s.refuse = fmt.Errorf("encode: %w", iq.ErrEncode)
	log, _ := newCalleeLogger()
	c := iq.NewCallee(s, iq.WithLogger(log))
	defer c.Close()
	c.Get("urn:example:a", "q", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		return req.Payload, nil
	})
	c.Receive(context.Background(), &iq.IQ{ID: "r2", Type: iq.TypeGet, Payload: iq.NewElement("urn:example:a", "q")})
	select {
	case got := <-s.sync:
		assert.Equal(t, "r2", got.ID)
		assert.Equal(t, iq.TypeError, got.Type)
		require.NotNil(t, got.Error)
		assert.Equal(t, iq.InternalServerError, got.Error.Condition)
	case <-time.After(calleeWaitFor):
		t.Fatal("no internal-server-error")
	}
	require.NoError(t, c.Drain(context.Background()))
}

// A request that an AsyncSender queued and then could not write ends with
// the Sender's error, as one SendIQ refuses does.
func TestCallerAsyncSendFailureEndsTheRequest(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := newAsyncSender()
	c := iq.NewCaller(s)
	defer c.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Request(context.Background(), &iq.IQ{Type: iq.TypeGet, Payload: iq.NewElement("urn:example:a", "q")})
		errc <- err
	}()
	q := s.next(t)
	q.n.Sent(errBoom)
	select {
	case err := <-errc:
		require.ErrorIs(t, err, errBoom)
		assert.Contains(t, err.Error(), "not sent")
	case <-time.After(calleeWaitFor):
		t.Fatal("the request did not end")
	}
	assert.Equal(t, 0, c.Pending())
}

// A queued request's response may come before its write's verdict (the
// peer read it while the writer had yet to settle its batch), and its
// deadline may pass while it is still queued: either way Request returns
// at once, and the late verdict, told to a Call the Sender still holds,
// ends nothing else. Run many times, so that the race detector sees a
// late verdict meet the Caller's next requests.
func TestCallerAsyncVerdictAfterRequestReturned(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := newAsyncSender()
	c := iq.NewCaller(s)
	defer c.Close()
	var late sync.WaitGroup
	for i := range 60 {
		timeout := i%3 == 2
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if timeout {
			ctx, cancel = context.WithTimeout(context.Background(), 5*time.Millisecond)
		}
		type result struct {
			resp *iq.IQ
			err  error
		}
		done := make(chan result, 1)
		go func() {
			resp, err := c.Request(ctx, &iq.IQ{Type: iq.TypeGet, Payload: iq.NewElement("urn:example:a", "q")})
			done <- result{resp, err}
		}()
		q := s.next(t)
		switch {
		case timeout:
			// Never told before the deadline.
		case i%3 == 0: // told first, then answered
			q.n.Sent(nil)
			require.True(t, c.Receive(callerResult(q.id, "")))
		default: // answered first, told later
			require.True(t, c.Receive(callerResult(q.id, "")))
		}
		r := <-done
		cancel()
		if timeout {
			require.ErrorIs(t, r.err, iq.ErrTimeout, "round %d", i)
			require.Error(t, q.ctx.Err(), "the send context ends with the request")
		} else {
			require.NoError(t, r.err, "round %d", i)
			assert.Equal(t, q.id, r.resp.ID)
		}
		if i%3 != 0 {
			late.Go(func() {
				if timeout {
					q.n.Sent(q.ctx.Err())
				} else {
					q.n.Sent(nil)
				}
			})
		}
	}
	late.Wait()
	assert.Equal(t, 0, c.Pending())
}

// Regression: a verdict told after Request returned (its deadline passed
// while the request queued) read the request's IQ for its id, although
// the IQ, given with an id of the caller's choosing, was its caller's
// again: a data race under -race.
func TestBugAsyncVerdictReadTheCallersIQAfterRequestReturned(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s := newAsyncSender()
	c := iq.NewCaller(s)
	defer c.Close()
	req := &iq.IQ{ID: "mine", Type: iq.TypeGet, Payload: iq.NewElement("urn:example:a", "q")}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Request(ctx, req)
		errc <- err
	}()
	q := s.next(t)
	told := make(chan struct{})
	go func() {
		defer close(told)
		time.Sleep(100 * time.Millisecond)
		q.n.Sent(context.DeadlineExceeded)
	}()
	require.ErrorIs(t, <-errc, iq.ErrTimeout)
	req.ID = "reused" // the caller's IQ is its own again
	<-told
	assert.Equal(t, 0, c.Pending())
}

// Go returns as soon as an AsyncSender has queued its request; the write's
// verdict, when it is an error, ends the Call as SendIQ's error would, and
// otherwise the response does.
func TestCallerGoAsync(t *testing.T) {
	for _, verdict := range []error{nil, errBoom} {
		t.Run(fmt.Sprintf("verdict=%v", verdict), func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			s := newAsyncSender()
			c := iq.NewCaller(s)
			defer c.Close()
			call := c.Go(context.Background(), &iq.IQ{Type: iq.TypeSet, Payload: iq.NewElement("urn:example:a", "q")}, nil)
			q := s.next(t)
			assert.Equal(t, call.Request.ID, q.id)
			assert.Equal(t, 1, c.Pending(), "queued, not yet written: pending")
			q.n.Sent(verdict)
			if verdict == nil {
				require.True(t, c.Receive(callerResult(q.id, "")))
			}
			select {
			case got := <-call.Done:
				require.Same(t, call, got)
			case <-time.After(calleeWaitFor):
				t.Fatal("the Call did not end")
			}
			if verdict != nil {
				require.ErrorIs(t, call.Err, errBoom)
				assert.Contains(t, call.Err.Error(), "not sent")
			} else {
				require.NoError(t, call.Err)
				assert.Equal(t, q.id, call.Response.ID)
			}
			assert.Equal(t, 0, c.Pending())
		})
	}
}

// A handler's result is taken from a pool, and put back, only when the
// Sender is an AsyncSender, which lets go of an IQ when SendIQAsync
// returns; a plain Sender may keep the IQs it is given, and they stay
// as they were sent.
func TestCalleeResultsKeptByAPlainSender(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rec := iqtest.NewRecorder()
	c := iq.NewCallee(rec)
	defer c.Close()
	c.Get("urn:example:a", "q", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		return req.Payload, nil
	})
	const n = 50
	for i := range n {
		c.Receive(context.Background(), &iq.IQ{ID: fmt.Sprint("r", i), Type: iq.TypeGet, Payload: iq.NewElement("urn:example:a", "q")})
	}
	require.NoError(t, c.Drain(context.Background()))
	sent := rec.Sent()
	require.Len(t, sent, n)
	ids := map[string]bool{}
	for _, r := range sent {
		assert.Equal(t, iq.TypeResult, r.Type)
		require.NotNil(t, r.Payload)
		ids[r.ID] = true
	}
	assert.Len(t, ids, n, "every reply kept whole, none reused for another")
}
