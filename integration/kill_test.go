package integration_test

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/internal/servertest"
)

// silentListener accepts connections and never writes a byte.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// TestServerKilledFailsPendingWithErrClosed kills the server (SIGKILL)
// under 50 pending requests: every one ends with ErrClosed within a second.
func TestServerKilledFailsPendingWithErrClosed(t *testing.T) {
	needServer(t)
	srv := servertest.PrivateServer(t, env.Server, "kill", "IQ_KILL")
	priv := srv.Vars
	saved := env
	env.CompAddr = priv["IQ_XMPP_COMPONENT_ADDR"]
	defer func() { env = saved }()

	release := make(chan struct{})
	defer close(release)
	dialComponent(t, priv["IQ_XMPP_COMPONENT"], priv["IQ_XMPP_COMPONENT_SECRET"], func(ep *iq.Endpoint) {
		ep.Callee.Get(nsEcho, "block", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, nil
		})
	})
	caller, _, served := dialComponent(t, priv["IQ_XMPP_COMPONENT2"], priv["IQ_XMPP_COMPONENT2_SECRET"], nil)

	const n = 50
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := caller.Caller.Get(context.Background(), priv["IQ_XMPP_COMPONENT"], iq.NewElement(nsEcho, "block"))
			errs <- err
		}()
	}
	require.Eventually(t, func() bool { return caller.Caller.Pending() == n }, 5*time.Second, 10*time.Millisecond)

	pid := srv.PID(t)
	killed := time.Now()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))

	for i := 0; i < n; i++ {
		select {
		case err := <-errs:
			assert.ErrorIs(t, err, iq.ErrClosed)
		case <-time.After(time.Until(killed.Add(time.Second))):
			t.Fatalf("only %d of %d requests ended within a second of the kill", i, n)
		}
	}
	t.Logf("all %d pending requests failed with ErrClosed %v after the kill", n, time.Since(killed))
	select {
	case <-served:
	case <-time.After(time.Second):
		t.Fatal("Serve did not return after the server died")
	}
	assert.Equal(t, 0, caller.Caller.Pending())
}
