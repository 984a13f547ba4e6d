package integration_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/component"
	"github.com/xmpp-iq/iq/internal/servertest"
	"github.com/xmpp-iq/iq/stream"
)

// TestIdleComponentStaysUp: a component stream on which nothing arrives
// for longer than its read timeout is probed with a ping to its own
// address, which the server routes back to it; the answer proves the
// stream alive, so a healthy idle component is never cut off. (Neither
// server writes anything to an idle component stream by itself.)
func TestIdleComponentStaysUp(t *testing.T) {
	needServer(t)
	const readTimeout = 500 * time.Millisecond
	conn, err := component.Dial(servertest.Ctx(t, 10*time.Second), "tcp", env.CompAddr, env.Spare, env.SpareSecret,
		stream.WithReadTimeout(readTimeout), stream.WithKeepalive(200*time.Millisecond))
	require.NoError(t, err)
	ep := iq.NewEndpoint(conn, iq.WithLocalJID(env.Spare))
	done := make(chan error, 1)
	go func() { done <- conn.Serve(context.Background(), ep, nil) }()
	t.Cleanup(func() {
		_ = conn.Close()
		<-done
	})

	// Eight read timeouts of silence: a stream declared dead ends Serve.
	select {
	case err := <-done:
		done <- err
		t.Fatalf("idle component stream ended after its read timeout: %v", err)
	case <-time.After(8 * readTimeout):
	}
	assert.NoError(t, conn.Err(), "the stream is still open")
	_, err = ep.Caller.Get(servertest.Ctx(t, 5*time.Second), env.Domain, iq.NewElement("urn:xmpp:ping", "ping"))
	assert.NoError(t, err, "a request after the idle period is answered")
}
