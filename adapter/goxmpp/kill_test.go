package goxmppiq_test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/internal/servertest"
)

// The server is killed (SIGKILL) under 50 pending requests: every one
// fails with iq.ErrClosed within a second, Serve returns the stream's
// error, and later requests fail at once.
func TestServerKilledFailsPendingWithErrClosed(t *testing.T) {
	needServer(t)
	srv := servertest.PrivateServer(t, env.Server, "goxmpp-kill", "IQ_KILL")
	priv := srv.Vars
	users := map[string]string{}
	for _, u := range strings.Fields(priv["IQ_XMPP_USERS"]) {
		name, pass, _ := strings.Cut(u, ":")
		users[name] = pass
	}
	addr := priv["IQ_XMPP_C2S_ADDR"]

	bob := loginAt(t, addr, users["bob"], "bob", blocking(t)).serve()
	alice := loginAt(t, addr, users["alice"], "alice", nil).serve()
	caller := alice.a.Endpoint.Caller

	const n = 50
	done := make(chan *iq.Call, n)
	for range n {
		caller.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, To: bob.jid,
			Payload: iq.NewElement(nsTest, "hang")}, done)
	}
	require.Eventually(t, func() bool { return caller.Pending() == n }, 5*time.Second, 10*time.Millisecond)

	pid := srv.PID(t)
	killed := time.Now()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))

	for i := range n {
		select {
		case call := <-done:
			assert.ErrorIs(t, call.Err, iq.ErrClosed)
		case <-time.After(time.Until(killed.Add(time.Second))):
			t.Fatalf("only %d of %d requests ended within a second of the kill", i, n)
		}
	}
	t.Logf("all %d pending requests failed with ErrClosed %v after the kill", n, time.Since(killed))
	select {
	case err := <-alice.served:
		alice.served <- err // for stop
		assert.Error(t, err, "Serve returned nil after the server died")
	case <-time.After(time.Second):
		t.Fatal("Serve did not return within a second of the kill")
	}
	assert.Equal(t, 0, caller.Pending())
	_, err := caller.Get(context.Background(), bob.jid, iq.NewElement(nsTest, "hang"))
	assert.ErrorIs(t, err, iq.ErrClosed)
}
