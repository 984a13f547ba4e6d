package iq_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
	"github.com/xmpp-iq/iq/stream"
)

const inlineNS = "urn:example:inline"

func inlineReq(id, local string) *iq.IQ {
	return &iq.IQ{Type: iq.TypeGet, ID: id, From: "peer@example.com/r", Payload: iq.NewElement(inlineNS, local)}
}

// TestInlineRunsOnReceiver: an inline handler runs on the goroutine that
// calls Receive, which returns only once the reply was handed to the
// Sender; while it runs, that goroutine reads nothing (the stall
// HandleInline documents). Its context carries Receive's values and
// deadline, and is cancelled once it returns.
func TestInlineRunsOnReceiver(t *testing.T) {
	rec := iqtest.NewRecorder()
	c := iq.NewCallee(rec)
	started, release := make(chan context.Context, 1), make(chan struct{})
	c.HandleInline(iq.TypeGet, inlineNS, "q", iq.HandlerFunc(func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		started <- ctx
		<-release
		return iq.NewElement(inlineNS, "ok"), nil
	}))
	deadline := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(context.WithValue(context.Background(), speedKey{}, "v"), deadline)
	defer cancel()

	returned := make(chan struct{})
	go func() {
		c.Receive(ctx, inlineReq("i1", "q"))
		close(returned)
	}()
	hctx := <-started
	select {
	case <-returned:
		t.Fatal("Receive returned while its inline handler was running")
	default:
	}
	assert.Equal(t, 1, c.InFlight())
	assert.Equal(t, "v", hctx.Value(speedKey{}))
	d, ok := hctx.Deadline()
	assert.True(t, ok)
	assert.Equal(t, deadline, d)
	assert.NoError(t, hctx.Err())
	close(release)
	<-returned
	require.Equal(t, 1, rec.Len(), "the reply is sent before Receive returns")
	assert.Equal(t, iq.TypeResult, rec.Last().Type)
	assert.Equal(t, "i1", rec.Last().ID)
	assert.Zero(t, c.InFlight())
	<-hctx.Done()
	assert.Equal(t, context.Canceled, context.Cause(hctx))
}

// TestInlineClose: Close cancels a running inline handler's context with
// ErrClosed, as a worker's; its reply is still sent.
func TestInlineClose(t *testing.T) {
	rec := iqtest.NewRecorder()
	c := iq.NewCallee(rec)
	c.HandleInline(iq.TypeGet, inlineNS, "q", iq.HandlerFunc(func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		go func() { _ = c.Close() }()
		<-ctx.Done()
		return nil, context.Cause(ctx)
	}))
	c.Receive(context.Background(), inlineReq("i1", "q"))
	require.Equal(t, 1, rec.Len())
	reply := rec.Last()
	require.Equal(t, iq.TypeError, reply.Type)
	assert.Equal(t, iq.InternalServerError, reply.Error.Condition)
	// A request after Close is refused without running the handler.
	c.Receive(context.Background(), inlineReq("i2", "q"))
	require.Equal(t, 2, rec.Len())
	assert.Equal(t, iq.ServiceUnavailable, rec.Last().Error.Condition)
}

// TestInlineReplies: what an inline handler returns, panics with or is
// refused for becomes its one reply, as for any handler.
func TestInlineReplies(t *testing.T) {
	tests := []struct {
		name     string
		handler  iq.HandlerFunc
		maxed    bool // another handler holds the only WithMaxInFlight slot
		wantType iq.Type
		wantCond iq.Condition
	}{
		{"result", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil }, false, iq.TypeResult, ""},
		{"stanza error", func(context.Context, *iq.IQ) (*iq.Element, error) {
			return nil, iq.NewError(iq.Modify, iq.NotAcceptable, "")
		}, false, iq.TypeError, iq.NotAcceptable},
		{"panic", func(context.Context, *iq.IQ) (*iq.Element, error) { panic("boom") }, false, iq.TypeError, iq.InternalServerError},
		{"over WithMaxInFlight", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil }, true, iq.TypeError, iq.ResourceConstraint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := iqtest.NewRecorder()
			c := iq.NewCallee(rec, iq.WithMaxInFlight(1))
			c.HandleInline(iq.TypeGet, inlineNS, "q", tt.handler)
			release := make(chan struct{})
			defer close(release)
			busy := make(chan struct{})
			c.Get(inlineNS, "busy", func(context.Context, *iq.IQ) (*iq.Element, error) {
				close(busy)
				<-release
				return nil, nil
			})
			if tt.maxed {
				c.Receive(context.Background(), inlineReq("b", "busy"))
				<-busy
			}
			c.Receive(context.Background(), inlineReq("i1", "q"))
			require.Equal(t, 1, rec.Len())
			reply := rec.Last()
			assert.Equal(t, "i1", reply.ID)
			assert.Equal(t, tt.wantType, reply.Type)
			if tt.wantCond != "" {
				require.NotNil(t, reply.Error)
				assert.Equal(t, tt.wantCond, reply.Error.Condition)
			}
		})
	}
}

// TestInlineRejectsRouteOptions: an inline route is ordered already.
func TestInlineRejectsRouteOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  iq.Middleware
	}{
		{"Ordered", iq.Ordered()},
		{"OrderedBySender", iq.OrderedBySender()},
		{"MaxQueued", iq.MaxQueued(3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := iq.NewCallee(iqtest.NewRecorder())
			h := iq.HandlerFunc(func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
			assert.Panics(t, func() { c.HandleInline(iq.TypeGet, inlineNS, "q", h, tt.opt) })
			assert.Empty(t, c.Namespaces(), "nothing registered")
		})
	}
}

// inlineStreams serves a client and a server Endpoint over net.Pipe.
func inlineStreams(t *testing.T) (client, server *iq.Endpoint) {
	p1, p2 := net.Pipe()
	cc, sc := stream.New(p1), stream.New(p2)
	client = iq.NewEndpoint(cc, iq.WithTimeout(10*time.Second))
	server = iq.NewEndpoint(sc, iq.WithTimeout(10*time.Second))
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = cc.Serve(context.Background(), client, nil) }()
	go func() { defer wg.Done(); _ = sc.Serve(context.Background(), server, nil) }()
	t.Cleanup(func() { _ = cc.Close(); _ = sc.Close(); wg.Wait() })
	return client, server
}

// TestInlineCallFailsFast: a request an inline handler makes on its own
// stream, and would wait for, fails at once with ErrInlineCall rather
// than deadlocking the read loop until its timeout; one made with an
// unrelated context, or on another stream, goes out as usual.
func TestInlineCallFailsFast(t *testing.T) {
	other, otherServer := inlineStreams(t)
	otherServer.Callee.Get(inlineNS, "pong", func(context.Context, *iq.IQ) (*iq.Element, error) {
		return iq.NewElement(inlineNS, "pong"), nil
	})
	tests := []struct {
		name    string
		call    func(ctx context.Context, server *iq.Endpoint) error
		wantErr error
	}{
		{"Get on the same Endpoint", func(ctx context.Context, server *iq.Endpoint) error {
			_, err := server.Caller.Get(ctx, "", iq.NewElement(inlineNS, "pong"))
			return err
		}, iq.ErrInlineCall},
		{"Request with a derived context", func(ctx context.Context, server *iq.Endpoint) error {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			_, err := server.Caller.Request(ctx, &iq.IQ{Type: iq.TypeSet, Payload: iq.NewElement(inlineNS, "pong")})
			return err
		}, iq.ErrInlineCall},
		{"GetAs on the same Endpoint", func(ctx context.Context, server *iq.Endpoint) error {
			_, err := iq.GetAs[*iq.Element](ctx, server.Caller, "", iq.NewElement(inlineNS, "pong"))
			return err
		}, iq.ErrInlineCall},
		{"another stream", func(ctx context.Context, _ *iq.Endpoint) error {
			res, err := other.Caller.Get(ctx, "", iq.NewElement(inlineNS, "pong"))
			if err == nil && res.Name.Local != "pong" {
				return errors.New("wrong answer")
			}
			return err
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := inlineStreams(t)
			got := make(chan error, 1)
			server.Callee.HandleInline(iq.TypeGet, inlineNS, "q", iq.HandlerFunc(func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
				err := tt.call(ctx, server)
				got <- err
				return nil, err
			}))
			_, err := client.Caller.Get(context.Background(), "", iq.NewElement(inlineNS, "q"))
			callErr := <-got
			if tt.wantErr == nil {
				require.NoError(t, callErr)
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, callErr, tt.wantErr)
			assert.NotErrorIs(t, callErr, iq.ErrTimeout)
			var serr *iq.StanzaError
			require.ErrorAs(t, err, &serr)
			assert.Equal(t, iq.InternalServerError, serr.Condition)
			assert.Zero(t, server.Caller.Pending(), "the refused request was never pending")
		})
	}
}

// TestInlineCallerOnSameSender: a Caller that is not the Endpoint's but
// sends through the inline Callee's own Sender is refused too, and an
// unrelated Caller is not.
func TestInlineCallerOnSameSender(t *testing.T) {
	rec := iqtest.NewRecorder()
	callee := iq.NewCallee(rec)
	same := iq.NewCaller(rec)
	defer same.Close()
	otherRec := iqtest.NewRecorder()
	var other *iq.Caller
	otherRec.OnSend(func(_ context.Context, out *iq.IQ) error {
		go other.Receive(out.Result(nil))
		return nil
	})
	other = iq.NewCaller(otherRec)
	defer other.Close()
	var sameErr, otherErr error
	callee.HandleInline(iq.TypeGet, inlineNS, "q", iq.HandlerFunc(func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		_, sameErr = same.Get(ctx, "", iq.NewElement(inlineNS, "x"))
		_, otherErr = other.Get(ctx, "", iq.NewElement(inlineNS, "x"))
		return nil, nil
	}))
	callee.Receive(context.Background(), inlineReq("i1", "q"))
	assert.ErrorIs(t, sameErr, iq.ErrInlineCall)
	assert.NoError(t, otherErr)
	assert.Equal(t, 1, otherRec.Len())
}
