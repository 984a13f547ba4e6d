package gosrciq_test

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

// blocking registers a get handler for <hang/> that returns only at the end
// of the test or of its context.
func blocking(t *testing.T) func(*iq.Endpoint) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	return func(e *iq.Endpoint) {
		e.Callee.Get(nsTest, "hang", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, iq.NewError(iq.Cancel, iq.ServiceUnavailable, "gave up")
		})
	}
}

// The server is killed (SIGKILL) under 50 pending requests: every one
// fails with iq.ErrClosed within a second, the client's error handler hears
// of it, and later requests fail at once.
func TestServerKilledFailsPendingWithErrClosed(t *testing.T) {
	needServer(t)
	noLeaks(t)
	srv := servertest.PrivateServer(t, env.Server, "gosrc-kill", "IQ_KILL")
	priv := srv.Vars
	users := map[string]string{}
	for _, u := range strings.Fields(priv["IQ_XMPP_USERS"]) {
		name, pass, _ := strings.Cut(u, ":")
		users[name] = pass
	}
	addr := priv["IQ_XMPP_C2S_ADDR"]

	bob := loginAt(t, addr, users["bob"], "bob", blocking(t))
	alice := loginAt(t, addr, users["alice"], "alice", nil)
	caller := alice.a.Endpoint.Caller

	const n = 50
	done := make(chan *iq.Call, n)
	for range n {
		caller.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, To: bob.jid,
			Payload: iq.NewElement(nsTest, "hang")}, done)
	}
	require.Eventually(t, func() bool { return caller.Pending() == n }, 5*time.Second, 10*time.Millisecond)

	killed := time.Now()
	require.NoError(t, syscall.Kill(srv.PID(t), syscall.SIGKILL))

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
	case err := <-alice.errs:
		assert.Error(t, err)
	case <-time.After(time.Second):
		t.Fatal("the client reported no error within a second of the kill")
	}
	assert.Equal(t, 0, caller.Pending())
	_, err := caller.Get(context.Background(), bob.jid, iq.NewElement(nsTest, "hang"))
	assert.ErrorIs(t, err, iq.ErrClosed)
}
