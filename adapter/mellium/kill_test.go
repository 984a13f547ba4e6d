package melliumiq_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/internal/servertest"
)

// The server is killed (SIGKILL) under 50 pending requests: every one
// fails with iq.ErrClosed within a second, Serve returns the stream's
// error, and later requests fail at once.
func TestServerKilledFailsPendingWithErrClosed(t *testing.T) {
	needServer(t)
	srv := servertest.PrivateServer(t, env.Server, "mellium-kill", "IQ_KILL")
	users := srv.Users()
	addr := srv.Vars["IQ_XMPP_C2S_ADDR"]

	bob := loginAt(t, addr, users["bob"], "bob", blocking(t, nil)).serve()
	alice := loginAt(t, addr, users["alice"], "alice", nil).serve()
	caller := alice.a.Endpoint.Caller

	servertest.KillWithPending(t, srv, caller, 50, func(done chan *iq.Call) {
		caller.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, To: bob.jid,
			Payload: iq.NewElement(nsTest, "hang")}, done)
	})
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
