package bench

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/xmpp-iq/iq"
	melliumiq "github.com/xmpp-iq/iq/adapter/mellium"
	"mellium.im/xmpp"
)

// newIQMelliumPeer is iq's Caller and Callee on two mellium sessions, each
// joined by the adapter (melliumiq): the path of a program that keeps
// mellium.im/xmpp for its connection and uses iq for its IQs. Caller →
// adapter's Sender → mellium session → wire → mellium session → adapter's
// Serve → Callee, and back. The server answers what newIQPeer's does.
func newIQMelliumPeer(tb testing.TB, client, server net.Conn) *iqPeer {
	cs := melliumSession(tb, 0, melliumClientJID, melliumServerJID, client)
	ss := melliumSession(tb, xmpp.Received, melliumServerJID, melliumClientJID, server)
	ca := melliumiq.New(cs, iq.WithMaxPending(1<<21))
	sa := melliumiq.New(ss, iq.WithMaxInFlight(8192))
	p := &iqPeer{client: ca.Endpoint, server: sa.Endpoint, to: melliumServerJID.String()}
	registerIQEcho(p.server)
	ctx, cancel := context.WithCancel(context.Background())
	var done sync.WaitGroup
	done.Go(func() { _ = ca.Serve(ctx) })
	done.Go(func() { _ = sa.Serve(ctx) })
	tb.Cleanup(func() {
		// As newMelliumPeer: cutting the connection ends both read loops,
		// where closing the sessions first can wait on the unbuffered pipe.
		cancel()
		_ = client.Close()
		_ = server.Close()
		done.Wait()
	})
	return p
}
