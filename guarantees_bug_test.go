package iq_test

import (
	"context"
	"encoding/xml"
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
