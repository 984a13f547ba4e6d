package iq_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

const guarNS = "urn:test:guarantees"

// TestBugNilSenderPanicsAtConstruction: NewEndpoint(nil) (and NewCaller,
// NewCallee) returned a value that failed at its first request, far from
// the mistake. Each now panics at once, naming itself.
func TestBugNilSenderPanicsAtConstruction(t *testing.T) {
	var nilFunc iq.SenderFunc
	cases := []struct {
		name string
		new  func()
		want string
	}{
		{"NewEndpoint", func() { iq.NewEndpoint(nil) }, "iq: NewEndpoint: nil Sender"},
		{"NewCaller", func() { iq.NewCaller(nil) }, "iq: NewCaller: nil Sender"},
		{"NewCallee", func() { iq.NewCallee(nil) }, "iq: NewCallee: nil Sender"},
		{"NewEndpoint nil SenderFunc", func() { iq.NewEndpoint(nilFunc) }, "iq: NewEndpoint: nil SenderFunc"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tt.want, tt.new)
		})
	}
}

// TestBugNilContextPanicsOnCallersGoroutine: Callee.Receive(nil, req)
// handed the nil context to a worker goroutine, whose panic killed the
// process. Every entry point that takes a context now panics on the
// calling goroutine, where recover and the stack trace can see the
// mistake, and nothing is sent.
func TestBugNilContextPanicsOnCallersGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rec := iqtest.NewRecorder()
	ep := iq.NewEndpoint(rec)
	defer ep.Close()
	ep.Callee.Get(guarNS, "q", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
	get := func() *iq.IQ {
		return &iq.IQ{Type: iq.TypeGet, ID: "g1", From: "a@b/c", Payload: iq.NewElement(guarNS, "q")}
	}
	var nilCtx context.Context
	cases := []struct {
		name string
		call func()
		want string
	}{
		{"Callee.Receive", func() { ep.Callee.Receive(nilCtx, get()) }, "iq: Callee.Receive: nil Context"},
		{"Callee.Reply", func() { ep.Callee.Reply(nilCtx, get()) }, "iq: Callee.Reply: nil Context"},
		{"Endpoint.Receive get", func() { ep.Receive(nilCtx, get()) }, "iq: Endpoint.Receive: nil Context"},
		{"Endpoint.Receive result", func() { ep.Receive(nilCtx, &iq.IQ{Type: iq.TypeResult, ID: "r"}) }, "iq: Endpoint.Receive: nil Context"},
		{"Caller.Request", func() { _, _ = ep.Caller.Request(nilCtx, get()) }, "iq: Caller.Request: nil Context"},
		{"Caller.Go", func() { ep.Caller.Go(nilCtx, get(), nil) }, "iq: Caller.Go: nil Context"},
		{"Caller.Get", func() { _, _ = ep.Caller.Get(nilCtx, "b", iq.NewElement(guarNS, "q")) }, "iq: Caller.Get: nil Context"},
		{"Caller.Set", func() { _, _ = ep.Caller.Set(nilCtx, "b", iq.NewElement(guarNS, "q")) }, "iq: Caller.Set: nil Context"},
		{"GetAs", func() { _, _ = iq.GetAs[iq.Element](nilCtx, ep.Caller, "b", iq.NewElement(guarNS, "q")) }, "iq: GetAs: nil Context"},
		{"SetAs", func() { _, _ = iq.SetAs[iq.Element](nilCtx, ep.Caller, "b", iq.NewElement(guarNS, "q")) }, "iq: SetAs: nil Context"},
		{"GetAs nil Caller", func() { _, _ = iq.GetAs[iq.Element](context.Background(), nil, "b", iq.NewElement(guarNS, "q")) }, "iq: GetAs: nil Caller"},
		{"HandleGet nil Callee", func() {
			iq.HandleGet(nil, func(context.Context, *guarQuery) (*guarQuery, error) { return nil, nil })
		}, "iq: HandleGet: nil Callee"},
		{"HandleSet nil Callee", func() {
			iq.HandleSet(nil, func(context.Context, *guarQuery) (*guarQuery, error) { return nil, nil })
		}, "iq: HandleSet: nil Callee"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			assert.PanicsWithValue(t, tt.want, tt.call)
		})
	}
	assert.Zero(t, rec.Len(), "nothing is sent for a call that panicked")
	assert.Zero(t, ep.Callee.InFlight())
	require.Zero(t, ep.Caller.Pending())
}

type guarQuery struct {
	XMLName xml.Name `xml:"urn:test:guarantees q"`
}

// TestBugRequestsThePeerCanOnlyRefuseAreNotSent: a get or set with Error
// set went out with two children, a payload in no namespace went out as
// <x/> in the stream's namespace, and GetAs[int] sent its request before
// failing to decode the answer. Each is now refused before the Sender
// sees anything, with an error wrapping ErrInvalid.
func TestBugRequestsThePeerCanOnlyRefuseAreNotSent(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cases := []struct {
		name string
		send func(ctx context.Context, c *iq.Caller) error
	}{
		{"get with Error", func(ctx context.Context, c *iq.Caller) error {
			_, err := c.Request(ctx, &iq.IQ{Type: iq.TypeGet, To: "b.example", Payload: iq.NewElement(guarNS, "q"),
				Error: iq.NewError(iq.Cancel, iq.BadRequest, "")})
			return err
		}},
		{"set with Error, Go", func(ctx context.Context, c *iq.Caller) error {
			call := c.Go(ctx, &iq.IQ{Type: iq.TypeSet, To: "b.example", Payload: iq.NewElement(guarNS, "q"),
				Error: iq.NewError(iq.Cancel, iq.BadRequest, "")}, nil)
			<-call.Done
			return call.Err
		}},
		{"get of an Error alone", func(ctx context.Context, c *iq.Caller) error {
			_, err := c.Request(ctx, &iq.IQ{Type: iq.TypeGet, To: "b.example", Error: iq.NewError(iq.Cancel, iq.BadRequest, "")})
			return err
		}},
		{"Get payload in no namespace", func(ctx context.Context, c *iq.Caller) error {
			_, err := c.Get(ctx, "b.example", iq.NewElement("", "x"))
			return err
		}},
		{"Set payload in no namespace", func(ctx context.Context, c *iq.Caller) error {
			_, err := c.Set(ctx, "b.example", iq.NewElement("", "x"))
			return err
		}},
		{"GetAs Element in no namespace", func(ctx context.Context, c *iq.Caller) error {
			_, err := iq.GetAs[iq.Element](ctx, c, "b.example", iq.NewElement("", "x"))
			return err
		}},
		{"GetAs int", func(ctx context.Context, c *iq.Caller) error {
			_, err := iq.GetAs[int](ctx, c, "b.example", guarQuery{})
			return err
		}},
		{"SetAs string", func(ctx context.Context, c *iq.Caller) error {
			_, err := iq.SetAs[string](ctx, c, "b.example", guarQuery{})
			return err
		}},
		{"GetAs map pointer", func(ctx context.Context, c *iq.Caller) error {
			_, err := iq.GetAs[*map[string]string](ctx, c, "b.example", guarQuery{})
			return err
		}},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			rec := iqtest.NewRecorder()
			c := iq.NewCaller(rec, iq.WithTimeout(time.Second))
			defer c.Close()
			err := tt.send(context.Background(), c)
			require.Error(t, err)
			assert.ErrorIs(t, err, iq.ErrInvalid)
			assert.Zero(t, rec.Len(), "nothing reaches the Sender")
			assert.Zero(t, c.Pending())
		})
	}
}

// TestBugRequestsThePeerCanAnswerStillGoOut: the checks of
// TestBugRequestsThePeerCanOnlyRefuseAreNotSent refuse nothing that is
// valid: each of these reaches the Sender.
func TestBugRequestsThePeerCanAnswerStillGoOut(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cases := []struct {
		name string
		send func(ctx context.Context, c *iq.Caller) error
	}{
		{"Get", func(ctx context.Context, c *iq.Caller) error {
			_, err := c.Get(ctx, "b.example", iq.NewElement(guarNS, "q"))
			return err
		}},
		{"GetAs struct", func(ctx context.Context, c *iq.Caller) error {
			_, err := iq.GetAs[guarQuery](ctx, c, "b.example", guarQuery{})
			return err
		}},
		{"GetAs struct pointer", func(ctx context.Context, c *iq.Caller) error {
			_, err := iq.GetAs[*guarQuery](ctx, c, "b.example", &guarQuery{})
			return err
		}},
		{"GetAs Element", func(ctx context.Context, c *iq.Caller) error {
			_, err := iq.GetAs[iq.Element](ctx, c, "b.example", iq.NewElement(guarNS, "q"))
			return err
		}},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			rec := iqtest.NewRecorder()
			c := iq.NewCaller(rec)
			defer c.Close()
			rec.OnSend(func(_ context.Context, out *iq.IQ) error {
				c.Receive(out.Result(nil)) // answered at once, empty
				return nil
			})
			require.NoError(t, tt.send(context.Background(), c))
			assert.Equal(t, 1, rec.Len())
		})
	}
}

// unwritable are handler outcomes whose reply the writer must refuse: a
// name that is not an XML name, at any depth, in a result or in the
// application element of a StanzaError.
var unwritable = []struct {
	name    string
	payload *iq.Element
	err     error
}{
	{name: "payload name", payload: iq.NewElement(guarNS, "bad name")},
	{name: "payload attribute name", payload: iq.NewElement(guarNS, "q", "bad attr", "v")},
	{name: "grandchild name", payload: iq.NewElement(guarNS, "q").Append(iq.NewElement(guarNS, "<x>"))},
	{name: "StanzaError App name", err: &iq.StanzaError{Type: iq.Modify, Condition: iq.BadRequest,
		App: iq.NewElement("urn:test:app", "1st")}},
}

// TestBugUnwritableReplyIsReplacedByInternalServerError: a handler result
// (or a StanzaError's App) that the writer refuses made the Sender fail;
// the failure was only logged and the requester waited for its whole
// timeout. The Callee now sends cancel/internal-server-error instead, at
// once, and logs it.
func TestBugUnwritableReplyIsReplacedByInternalServerError(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, tt := range unwritable {
		t.Run(tt.name, func(t *testing.T) {
			log, logs := newCalleeLogger()
			p := iqtest.NewPair("a@example.com/r", "b.example.com",
				iqtest.WithEndpointOptions(iq.WithLogger(log), iq.WithTimeout(time.Minute)))
			defer p.Close()
			p.B.Callee.Get(guarNS, "q", func(context.Context, *iq.IQ) (*iq.Element, error) {
				return tt.payload, tt.err
			})
			start := time.Now()
			_, err := p.A.Caller.Get(context.Background(), p.BJID, iq.NewElement(guarNS, "q"))
			var serr *iq.StanzaError
			require.ErrorAs(t, err, &serr)
			assert.Equal(t, iq.Cancel, serr.Type)
			assert.Equal(t, iq.InternalServerError, serr.Condition)
			assert.Nil(t, serr.App)
			assert.Less(t, time.Since(start), 10*time.Second, "answered, not timed out")
			assert.Contains(t, logs.String(), "reply cannot be encoded")
			assert.NotContains(t, logs.String(), "reply not sent")
		})
	}
}

// TestBugUnwritableReplyCountsOnce: the replacement is one reply: the
// Sender sees exactly two sends (the refused reply and its replacement)
// and the requester exactly one IQ, and no reply is counted dropped.
func TestBugUnwritableReplyCountsOnce(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rec := iqtest.NewRecorder()
	rec.OnSend(func(_ context.Context, out *iq.IQ) error {
		_, err := out.AppendXML(nil)
		return err // as a stream would: refuse what does not encode
	})
	m := new(metricsCounter)
	c := iq.NewCallee(rec, iq.WithMetrics(m))
	defer c.Close()
	c.Get(guarNS, "q", func(context.Context, *iq.IQ) (*iq.Element, error) {
		return iq.NewElement(guarNS, "bad name"), nil
	})
	c.Receive(context.Background(), &iq.IQ{Type: iq.TypeGet, ID: "x1", From: "a@b/c", To: "d", Payload: iq.NewElement(guarNS, "q")})
	sent, err := rec.WaitFor(2, 5*time.Second)
	require.NoError(t, err)
	_, err = sent[0].AppendXML(nil)
	assert.ErrorIs(t, err, iq.ErrEncode)
	last := sent[1]
	assert.Equal(t, iq.TypeError, last.Type)
	assert.Equal(t, "x1", last.ID)
	assert.Equal(t, "a@b/c", last.To)
	assert.Equal(t, "d", last.From)
	require.NotNil(t, last.Error)
	assert.Equal(t, iq.InternalServerError, last.Error.Condition)
	require.Eventually(t, func() bool { return c.InFlight() == 0 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, 2, rec.Len())
	assert.Zero(t, m.dropped.Load())
}

// blockingSender is a Sender stuck on a peer that stopped reading: each
// send waits for its context, or for the test's release, and hands its
// context to the test.
type blockingSender struct {
	ctxs    chan sendSeen
	ended   chan error // the context's error, when it ended the send
	release chan struct{}
}

func newBlockingSender(t *testing.T) *blockingSender {
	s := &blockingSender{ctxs: make(chan sendSeen, 16), ended: make(chan error, 16), release: make(chan struct{})}
	t.Cleanup(func() { close(s.release) }) // so that the old code's hang ends with the test
	return s
}

// sendSeen is what a send's context said as the send started: the test
// may not look at the context itself once SendIQ has returned.
type sendSeen struct {
	deadline time.Time
	ok       bool
	value    any
	err      error
}

func (s *blockingSender) SendIQ(ctx context.Context, _ *iq.IQ) error {
	d, ok := ctx.Deadline()
	s.ctxs <- sendSeen{deadline: d, ok: ok, value: ctx.Value(guarKey{}), err: ctx.Err()}
	select {
	case <-ctx.Done():
		err := ctx.Err()
		s.ended <- err
		return err
	case <-s.release:
		return errors.New("released by the test")
	}
}

// endedWith waits for a send to end by its context and returns the
// context's error then.
func (s *blockingSender) endedWith(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.ended:
		return err
	case <-time.After(5 * time.Second):
		require.FailNow(t, "the Sender's context never ended")
	}
	return nil
}

// sendCtx returns what the next send's context said.
func (s *blockingSender) sendCtx(t *testing.T) sendSeen {
	t.Helper()
	select {
	case seen := <-s.ctxs:
		return seen
	case <-time.After(5 * time.Second):
		require.FailNow(t, "nothing sent")
	}
	return sendSeen{}
}

type guarKey struct{}

// TestBugCallerDeadlineAndCloseReachTheSender: a request made with
// context.Background() gave the Sender that very context, so a Sender
// blocked on a peer that stopped reading stayed blocked long after the
// request's WithTimeout, and Caller.Close did not release it either. The
// Sender's context now ends at the request's deadline and when the Caller
// closes, and carries the request context's values.
func TestBugCallerDeadlineAndCloseReachTheSender(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const timeout = 100 * time.Millisecond
	cases := []struct {
		name     string
		async    bool // Go rather than Request
		end      func(*iq.Caller, context.CancelFunc)
		want     error         // what Request returns
		ctxErr   error         // what the Sender's context reports
		deadline time.Duration // the Caller's timeout
	}{
		{name: "Request, WithTimeout", deadline: timeout, want: iq.ErrTimeout, ctxErr: context.DeadlineExceeded},
		{name: "Go, WithTimeout", async: true, deadline: timeout, want: iq.ErrTimeout, ctxErr: context.DeadlineExceeded},
		{name: "Request, Close", deadline: time.Hour, end: func(c *iq.Caller, _ context.CancelFunc) { c.Close() },
			want: iq.ErrClosed, ctxErr: context.Canceled},
		{name: "Go, Close", async: true, deadline: time.Hour, end: func(c *iq.Caller, _ context.CancelFunc) { c.Close() },
			want: iq.ErrClosed, ctxErr: context.Canceled},
		{name: "Request, its context cancelled", deadline: time.Hour, end: func(_ *iq.Caller, cancel context.CancelFunc) { cancel() },
			want: context.Canceled, ctxErr: context.Canceled},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			s := newBlockingSender(t)
			c := iq.NewCaller(s, iq.WithTimeout(tt.deadline))
			defer c.Close()
			parent := context.WithValue(context.Background(), guarKey{}, "v")
			ctx, cancel := context.WithCancel(parent)
			defer cancel()
			if tt.end == nil {
				ctx = parent // context.Background() and a value: no deadline, no cancellation
			}
			start := time.Now()
			errc := make(chan error, 1)
			go func() {
				req := &iq.IQ{Type: iq.TypeGet, To: "b.example", Payload: iq.NewElement(guarNS, "q")}
				if tt.async {
					call := c.Go(ctx, req, nil)
					<-call.Done
					errc <- call.Err
					return
				}
				_, err := c.Request(ctx, req)
				errc <- err
			}()
			seen := s.sendCtx(t)
			assert.True(t, seen.ok, "the Sender's context has the request's deadline")
			assert.WithinDuration(t, start.Add(tt.deadline), seen.deadline, time.Second)
			assert.Equal(t, "v", seen.value)
			assert.NoError(t, seen.err)
			if tt.end != nil {
				tt.end(c, cancel)
			}
			select {
			case err := <-errc:
				assert.ErrorIs(t, err, tt.want)
			case <-time.After(5 * time.Second):
				require.FailNow(t, "the request outlived its end")
			}
			assert.ErrorIs(t, s.endedWith(t), tt.ctxErr)
			assert.Zero(t, c.Pending())
		})
	}
}

// TestBugCalleeReplyIsBoundedByReplyTimeout: the Callee sent its replies
// with context.WithoutCancel, so a Sender blocked on a peer that stopped
// reading held the handler's goroutine forever. The reply's context now
// ends WithReplyTimeout after the reply was due (DefaultReplyTimeout by
// default), the reply is counted dropped, and the context still carries
// the request context's values.
func TestBugCalleeReplyIsBoundedByReplyTimeout(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cases := []struct {
		name  string
		opts  []iq.Option
		want  time.Duration
		route bool // a handler answers; else an error reply from Receive's goroutine
	}{
		{name: "handler reply", opts: []iq.Option{iq.WithReplyTimeout(100 * time.Millisecond)}, want: 100 * time.Millisecond, route: true},
		{name: "unroutable reply", opts: []iq.Option{iq.WithReplyTimeout(100 * time.Millisecond)}, want: 100 * time.Millisecond},
		{name: "default", want: iq.DefaultReplyTimeout, route: true},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			s := newBlockingSender(t)
			m := new(metricsCounter)
			c := iq.NewCallee(s, append(tt.opts, iq.WithMetrics(m))...)
			defer c.Close()
			c.Get(guarNS, "q", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
			name := "q"
			if !tt.route {
				name = "unknown"
			}
			ctx, cancel := context.WithCancel(context.WithValue(context.Background(), guarKey{}, "v"))
			cancel() // a request whose context ended still gets its reply
			start := time.Now()
			go c.Receive(ctx, &iq.IQ{Type: iq.TypeGet, ID: "r1", From: "a@b/c", Payload: iq.NewElement(guarNS, name)})
			seen := s.sendCtx(t)
			require.True(t, seen.ok)
			assert.WithinDuration(t, start.Add(tt.want), seen.deadline, time.Second)
			assert.Equal(t, "v", seen.value)
			assert.NoError(t, seen.err, "the request's ended context does not end its reply")
			if tt.want > time.Second {
				return
			}
			assert.ErrorIs(t, s.endedWith(t), context.DeadlineExceeded)
			assert.Less(t, time.Since(start), 5*time.Second)
			assert.Eventually(t, func() bool { return m.dropped.Load() == 1 }, 5*time.Second, time.Millisecond)
			assert.Eventually(t, func() bool { return c.InFlight() == 0 }, 5*time.Second, time.Millisecond)
		})
	}
}

// TestBugSendContextWorksWithTheContextPackage: the Sender's context is
// the Caller's own type; contexts derived from it, and context.AfterFunc
// on it (more than once, stopped or not), end with the request.
func TestBugSendContextWorksWithTheContextPackage(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var ran, stopped atomic.Int64
	s := iq.SenderFunc(func(ctx context.Context, _ *iq.IQ) error {
		child, cancel := context.WithTimeout(ctx, time.Hour)
		defer cancel()
		stop := context.AfterFunc(ctx, func() { stopped.Add(1) })
		context.AfterFunc(ctx, func() { ran.Add(1) })
		context.AfterFunc(child, func() { ran.Add(1) })
		if stop() {
			stopped.Store(-1) // stopped before the end: it must never run
		}
		<-child.Done()
		if !errors.Is(child.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("child ended with %v", child.Err())
		}
		return child.Err()
	})
	c := iq.NewCaller(s, iq.WithTimeout(50*time.Millisecond))
	defer c.Close()
	_, err := c.Request(context.Background(), &iq.IQ{Type: iq.TypeGet, To: "b.example", Payload: iq.NewElement(guarNS, "q")})
	assert.ErrorIs(t, err, iq.ErrTimeout)
	assert.Eventually(t, func() bool { return ran.Load() == 2 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, int64(-1), stopped.Load())
}
