package iqotel_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/component"
	iqotel "github.com/xmpp-iq/iq/otel"
)

// serverComponent connects a component to the server the IQ_XMPP_*
// variables name (scripts/prosody.sh or scripts/ejabberd.sh) and serves
// an Endpoint made with opts. Without a server the test is skipped, or
// fails when IQ_REQUIRE_INTEGRATION=1, as in CI.
func serverComponent(t *testing.T, domain, secret string, opts ...iq.Option) *iq.Endpoint {
	t.Helper()
	addr := os.Getenv("IQ_XMPP_COMPONENT_ADDR")
	if addr == "" || domain == "" {
		if os.Getenv("IQ_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("IQ_REQUIRE_INTEGRATION=1 but no server configured: load the env file of scripts/prosody.sh or scripts/ejabberd.sh")
		}
		t.Skip("no XMPP server configured (IQ_XMPP_COMPONENT_ADDR unset)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := component.Dial(ctx, "tcp", addr, domain, secret)
	require.NoError(t, err)
	ep := iq.NewEndpoint(conn, append([]iq.Option{iq.WithLocalJID(domain)}, opts...)...)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = conn.Serve(context.Background(), ep, nil)
	}()
	t.Cleanup(func() {
		_ = conn.Close()
		<-done
	})
	return ep
}

// TestWirePropagationThroughServer: the trace context rides as
// attributes on the payload through a real server (Prosody or ejabberd,
// which relay the payload unchanged), so a call from one component to
// another is one trace, and the handler never sees the attributes.
func TestWirePropagationThroughServer(t *testing.T) {
	e := newEnv(t, iqotel.WithWirePropagation())
	a := os.Getenv("IQ_XMPP_COMPONENT")
	b := os.Getenv("IQ_XMPP_COMPONENT2")
	epA := serverComponent(t, a, os.Getenv("IQ_XMPP_COMPONENT_SECRET"), e.inst.Options()...)
	epB := serverComponent(t, b, os.Getenv("IQ_XMPP_COMPONENT2_SECRET"), e.inst.Options()...)
	epB.Callee.Use(e.inst.Middleware())
	seen := make(chan int, 1)
	epB.Callee.Get(nsEcho, "echo", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		seen <- len(req.Payload.Attr)
		return iq.NewElement(nsEcho, "echo"), nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := epA.Caller.Get(ctx, b, iq.NewElement(nsEcho, "echo"))
	require.NoError(t, err)
	assert.Equal(t, 0, <-seen, "the handler sees no trace attributes")

	spans := e.ended(t, 2)
	client := find(t, spans, trace.SpanKindClient, "get {urn:example:echo}echo")
	server := find(t, spans, trace.SpanKindServer, "get {urn:example:echo}echo")
	assert.Equal(t, client.SpanContext().TraceID(), server.SpanContext().TraceID(), "one trace across the server")
	assert.Equal(t, client.SpanContext().SpanID(), server.Parent().SpanID(), "the server span's parent is the client span")
	assert.True(t, server.Parent().IsRemote())
}
