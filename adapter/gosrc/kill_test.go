package gosrciq_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

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
	users := srv.Users()
	addr := srv.Vars["IQ_XMPP_C2S_ADDR"]

	bob := loginAt(t, addr, users["bob"], "bob", blocking(t))
	alice := loginAt(t, addr, users["alice"], "alice", nil)
	caller := alice.a.Endpoint.Caller

	servertest.KillWithPending(t, srv, caller, 50, func(done chan *iq.Call) {
		caller.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, To: bob.jid,
			Payload: iq.NewElement(nsTest, "hang")}, done)
	})
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
