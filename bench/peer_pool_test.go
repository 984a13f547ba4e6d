package bench

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/component"
	"github.com/xmpp-iq/iq/stream"
)

// Addresses of the two components a pool peer joins.
const (
	poolClientJID = "caller.example"
	poolServerJID = "echo.example"
)

// newPoolPeer is iq's Caller and Callee each under a component.Pool of n
// connections, the two pools joined connection by connection: the path of
// a component that serves and calls through a Pool. Each Pool dials with
// WithDialer: the client's dials take the client ends of n pairs of tr's
// connections, the server's the other ends, each a stream in the
// component namespace with no handshake (the benchmark
// measures the Pool and what it sends through, not the dial). Requests
// go out round-robin over the client's connections; the server's Callee
// answers each on the connection it came in on. It returns once every
// connection is up.
func newPoolPeer(tb testing.TB, tr transport, n int) *iqPeer {
	tb.Helper()
	// The connections are made before the pools, so that they are closed
	// after the pools stop: a connection closed under a running Pool
	// would be dialed again.
	clients, servers := make(chan net.Conn, n), make(chan net.Conn, n)
	for range n {
		c, s := tr.conns(tb)
		clients <- c
		servers <- s
	}
	dial := func(conns chan net.Conn, jid string) component.DialFunc {
		return func(ctx context.Context) (*stream.Conn, error) {
			select {
			case c := <-conns:
				return poolStream(c, jid), nil
			default:
				return nil, errors.New("bench: pool peer: a connection was dialed twice")
			}
		}
	}
	cp := newBenchPool(n, poolClientJID, dial(clients, poolClientJID))
	sp := newBenchPool(n, poolServerJID, dial(servers, poolServerJID))
	p := &iqPeer{
		client: iq.NewEndpoint(cp, iq.WithLocalJID(poolClientJID), iq.WithMaxPending(1<<21)),
		server: iq.NewEndpoint(sp, iq.WithLocalJID(poolServerJID), iq.WithMaxInFlight(8192)), // see newIQPeerWith
		to:     poolServerJID,
	}
	registerIQEcho(p.server)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 2)
	go func() { ran <- cp.Run(ctx, p.client, nil) }()
	go func() { ran <- sp.Run(ctx, p.server, nil) }()
	tb.Cleanup(func() {
		cancel()
		<-ran
		<-ran
	})
	waitPoolUp(tb, cp, sp)
	return p
}

// poolStream is one connection of a pool peer's component, as the
// server would hand it over after the handshake.
func poolStream(c net.Conn, jid string) *stream.Conn {
	return stream.New(c, stream.WithNamespace(iq.NSComponent), stream.WithLocalAddress(jid),
		stream.WithMaxStanzaSize(maxStanza))
}

// newBenchPool is a Pool of n connections dialed by dial, as jid.
func newBenchPool(n int, jid string, dial component.DialFunc) *component.Pool {
	return component.NewPool(n, "tcp", "127.0.0.1:1", jid, "secret",
		component.WithDialer(dial), component.WithBackoff(time.Millisecond, time.Millisecond))
}

// waitPoolUp waits until every connection of every pool is up.
func waitPoolUp(tb testing.TB, pools ...*component.Pool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range pools {
		for {
			up := 0
			for _, c := range p.Conns() {
				if c != nil && c.Err() == nil {
					up++
				}
			}
			if up == len(p.Conns()) {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("bench: pool peer: %d of %d connections up after 10 s", up, len(p.Conns()))
			}
			time.Sleep(time.Millisecond)
		}
	}
}
