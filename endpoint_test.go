package iq_test

import (
	"context"
	"encoding/xml"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

// callerNoOutput checks that nothing is sent through rec for a while.
func callerNoOutput(t *testing.T, rec *iqtest.Recorder) {
	t.Helper()
	if q, err := rec.Next(20 * time.Millisecond); err == nil {
		t.Fatalf("unexpected output: %v", q)
	}
	assert.Zero(t, rec.Len())
}

func TestEndpointRoutesResponsesToCaller(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tests := []struct {
		name  string
		reply func(req *iq.IQ) *iq.IQ
		check func(t *testing.T, call *iq.Call)
	}{
		{
			name:  "result",
			reply: func(req *iq.IQ) *iq.IQ { return req.Result(iq.NewElement(callerNS, "answer")) },
			check: func(t *testing.T, call *iq.Call) {
				require.NoError(t, call.Err)
				assert.Equal(t, "answer", call.Response.Payload.Name.Local)
			},
		},
		{
			name:  "error",
			reply: func(req *iq.IQ) *iq.IQ { return req.ErrorReply(iq.NewError(iq.Cancel, iq.ItemNotFound, "")) },
			check: func(t *testing.T, call *iq.Call) {
				assert.ErrorIs(t, call.Err, &iq.StanzaError{Condition: iq.ItemNotFound})
				assert.Equal(t, iq.TypeError, call.Response.Type)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := iqtest.NewRecorder()
			ep := iq.NewEndpoint(rec)
			defer ep.Close()
			handled := false
			ep.Callee.Get(callerNS, "query", func(context.Context, *iq.IQ) (*iq.Element, error) {
				handled = true
				return nil, nil
			})
			call := ep.Caller.Go(context.Background(), callerGet("r1", "example.com"), nil)
			req := nextSent(t, rec)
			ep.Receive(context.Background(), tt.reply(req))
			callerWait(t, call)
			tt.check(t, call)
			assert.Zero(t, ep.Caller.Pending())
			assert.False(t, handled, "a response must not reach the Callee")
			assert.Len(t, rec.Sent(), 1, "nothing but the request is sent")
		})
	}
}

func TestEndpointRoutesRequestsToCallee(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, typ := range []iq.Type{iq.TypeGet, iq.TypeSet} {
		t.Run(string(typ), func(t *testing.T) {
			rec := iqtest.NewRecorder()
			ep := iq.NewEndpoint(rec)
			defer ep.Close()
			ep.Callee.Handle(typ, callerNS, "query", iq.HandlerFunc(func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
				return iq.NewElement(callerNS, "handled", "type", string(req.Type)), nil
			}))
			// A pending request with the same id must not catch the inbound request.
			call := ep.Caller.Go(context.Background(), callerGet("in1", "romeo@example.net"), nil)
			nextSent(t, rec)

			ep.Receive(context.Background(), &iq.IQ{Type: typ, ID: "in1", From: "romeo@example.net", To: "juliet@example.com", Payload: callerPayload()})
			reply := nextSent(t, rec)
			assert.Equal(t, iq.TypeResult, reply.Type)
			assert.Equal(t, "in1", reply.ID)
			assert.Equal(t, "romeo@example.net", reply.To)
			assert.Equal(t, "handled", reply.Payload.Name.Local)
			assert.Equal(t, string(typ), reply.Payload.AttrValue("type"))
			assert.Equal(t, 1, ep.Caller.Pending())
			select {
			case <-call.Done:
				t.Fatal("an inbound request ended a pending request")
			default:
			}
		})
	}
}

func TestEndpointUnknownTypeAnsweredBadRequest(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, typ := range []iq.Type{"", "fetch", "GET", "Result"} {
		t.Run("type "+string(typ), func(t *testing.T) {
			rec := iqtest.NewRecorder()
			ep := iq.NewEndpoint(rec)
			defer ep.Close()
			ep.Callee.Get(callerNS, "query", func(context.Context, *iq.IQ) (*iq.Element, error) {
				t.Error("handler called for an IQ of unknown type")
				return nil, nil
			})
			ep.Receive(context.Background(), &iq.IQ{Type: typ, ID: "u1", From: "romeo@example.net/orchard", Payload: callerPayload()})
			reply := nextSent(t, rec)
			assert.Equal(t, iq.TypeError, reply.Type)
			assert.Equal(t, "u1", reply.ID)
			assert.Equal(t, "romeo@example.net/orchard", reply.To)
			require.NotNil(t, reply.Error)
			assert.Equal(t, iq.BadRequest, reply.Error.Condition)
			assert.Len(t, rec.Sent(), 1)
		})
	}
}

func TestEndpointUnmatchedResponseDropped(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tests := []struct {
		name string
		in   *iq.IQ
	}{
		{"result with unknown id", &iq.IQ{Type: iq.TypeResult, ID: "nope", From: "example.com"}},
		{"error with unknown id", &iq.IQ{Type: iq.TypeError, ID: "nope", From: "example.com",
			Error: iq.NewError(iq.Cancel, iq.ItemNotFound, "")}},
		{"result with a payload and unknown id", &iq.IQ{Type: iq.TypeResult, ID: "nope", Payload: callerPayload()}},
		{"result from a sender not allowed", &iq.IQ{Type: iq.TypeResult, ID: "pending", From: "mallory@evil.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := iqtest.NewRecorder()
			ep := iq.NewEndpoint(rec)
			defer ep.Close()
			call := ep.Caller.Go(context.Background(), callerGet("pending", "example.com"), nil)
			nextSent(t, rec)
			rec.Reset()

			ep.Receive(context.Background(), tt.in)
			callerNoOutput(t, rec)
			assert.Equal(t, 1, ep.Caller.Pending())
			select {
			case <-call.Done:
				t.Fatal("pending request ended")
			default:
			}
		})
	}
}

// Bug: Endpoint.Receive dereferences a nil IQ, while Caller.Receive and
// Callee.Receive both ignore one.
func TestEndpointNilIQIgnored(t *testing.T) {
	rec := iqtest.NewRecorder()
	ep := iq.NewEndpoint(rec)
	defer ep.Close()
	assert.NotPanics(t, func() { ep.Receive(context.Background(), nil) })
	assert.Zero(t, rec.Len())
}

func TestEndpointClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	errCause := errors.New("stream ended")
	rec := iqtest.NewRecorder()
	ep := iq.NewEndpoint(rec, iq.WithTimeout(time.Minute))
	call := ep.Caller.Go(context.Background(), callerGet("", "example.com"), nil)
	nextSent(t, rec)

	require.NoError(t, ep.CloseWithError(errCause))
	callerWait(t, call)
	assert.ErrorIs(t, call.Err, iq.ErrClosed)
	assert.ErrorIs(t, call.Err, errCause)
	_, err := ep.Caller.Get(context.Background(), "example.com", callerPayload())
	assert.ErrorIs(t, err, iq.ErrClosed)

	// The Callee answers service-unavailable once closed.
	ep.Callee.Get(callerNS, "query", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
	ep.Receive(context.Background(), callerGet("late", ""))
	reply := nextSent(t, rec)
	assert.Equal(t, iq.TypeError, reply.Type)
	require.NotNil(t, reply.Error)
	assert.Equal(t, iq.ServiceUnavailable, reply.Error.Condition)
	assert.NoError(t, ep.Close())
}

func TestEndpointPipeRoundTrip(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const (
		clientJID  = "juliet@example.com/balcony"
		serviceJID = "echo.example.com"
	)
	var mu sync.Mutex
	wire := map[string][]string{} // by sender
	p := iqtest.NewPair(clientJID, serviceJID, iqtest.WithWireTap(func(from string, raw []byte) {
		mu.Lock()
		defer mu.Unlock()
		wire[from] = append(wire[from], string(raw))
	}))
	defer p.Close()
	client, service := p.A, p.B
	wireFrom := func(from string) []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), wire[from]...)
	}

	var gotFrom string
	service.Callee.Get(callerNS, "echo", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		gotFrom = req.From
		return iq.NewElement(callerNS, "echo", "kind", req.Payload.AttrValue("kind")).AppendText(req.Payload.Text()), nil
	})
	service.Callee.Set(callerNS, "store", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		if req.Payload.Text() == "" {
			return nil, iq.NewError(iq.Modify, iq.NotAcceptable, "nothing to store")
		}
		return nil, nil
	})
	ctx := context.Background()

	t.Run("get", func(t *testing.T) {
		res, err := client.Caller.Get(ctx, serviceJID, iq.NewElement(callerNS, "echo", "kind", "test").AppendText("hello & <bye>"))
		require.NoError(t, err)
		require.NotNil(t, res)
		assert.Equal(t, xml.Name{Space: callerNS, Local: "echo"}, res.Name)
		assert.Equal(t, "test", res.AttrValue("kind"))
		assert.Equal(t, "hello & <bye>", res.Text())
		assert.Equal(t, clientJID, gotFrom)
		assert.Zero(t, client.Caller.Pending())

		wire := wireFrom(clientJID)
		require.NotEmpty(t, wire)
		assert.Contains(t, wire[len(wire)-1], `type="get"`)
		back := wireFrom(serviceJID)
		require.NotEmpty(t, back)
		assert.Contains(t, back[len(back)-1], `type="result"`)
	})

	t.Run("set with empty result", func(t *testing.T) {
		res, err := client.Caller.Set(ctx, serviceJID, iq.NewElement(callerNS, "store").AppendText("42"))
		require.NoError(t, err)
		assert.Nil(t, res)
	})

	t.Run("stanza error", func(t *testing.T) {
		resp, err := client.Caller.Request(ctx, &iq.IQ{Type: iq.TypeSet, To: serviceJID, Payload: iq.NewElement(callerNS, "store")})
		require.Error(t, err)
		assert.ErrorIs(t, err, &iq.StanzaError{Type: iq.Modify, Condition: iq.NotAcceptable})
		var serr *iq.StanzaError
		require.ErrorAs(t, err, &serr)
		assert.Equal(t, "nothing to store", serr.Text)
		require.NotNil(t, resp)
		assert.Equal(t, serviceJID, resp.From)
	})

	t.Run("unrouted request", func(t *testing.T) {
		_, err := client.Caller.Get(ctx, serviceJID, iq.NewElement("urn:unknown", "query"))
		assert.ErrorIs(t, err, &iq.StanzaError{Condition: iq.FeatureNotImplemented})
	})
}
