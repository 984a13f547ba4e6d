package bench

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// maxStanza lets the 500 KB rows through both ends of every iq stream.
const maxStanza = 4 << 20

// iqPeer is iq's Caller on one stream.Conn and its Callee on the other,
// over one connection: Caller → Conn → wire → Conn → Callee and back.
type iqPeer struct {
	client, server *iq.Endpoint
	to             string // the server's address, when its stream needs one
}

// newIQPeer serves both ends of client/server, with a context that can
// end, until the test ends. The
// server echoes gets of <query/> in echoNS and dataNS, answers one in
// wrongNS with an empty <query/>, and answers
// forecasts with a typed handler that returns what it decoded. sender,
// when not nil, wraps the client's Sender (PendingLatency uses it to drop
// requests that must stay pending); opts go to the client's Endpoint.
func newIQPeer(tb testing.TB, client, server net.Conn, sender func(iq.Sender) iq.Sender, opts ...iq.Option) *iqPeer {
	return newIQPeerWith(tb, client, server, sender, opts, nil)
}

// newIQReleasePeer is newIQPeer with both Endpoints made
// iq.WithTreeReuse: the server's Callee releases each request once its
// reply is sent, and the client releases each response (echoReleaseOp).
func newIQReleasePeer(tb testing.TB, client, server net.Conn) *iqPeer {
	reuse := []iq.Option{iq.WithTreeReuse()}
	return newIQPeerWith(tb, client, server, nil, reuse, reuse)
}

// newIQPeerWith is newIQPeer with options for the server's Endpoint too.
func newIQPeerWith(tb testing.TB, client, server net.Conn, sender func(iq.Sender) iq.Sender, opts, serverOpts []iq.Option) *iqPeer {
	cc := stream.New(client, stream.WithMaxStanzaSize(maxStanza))
	sc := stream.New(server, stream.WithMaxStanzaSize(maxStanza))
	var cs iq.Sender = cc
	if sender != nil {
		cs = sender(cc)
	}
	p := &iqPeer{
		client: iq.NewEndpoint(cs, append([]iq.Option{iq.WithMaxPending(1 << 21)}, opts...)...),
		// A handler counts as in flight until its reply is written, so
		// with 512 requests outstanding the server can briefly hold up to
		// twice that (replies written, the next requests already read):
		// a cap well above it, so that the benchmark measures no refusals.
		server: iq.NewEndpoint(sc, append([]iq.Option{iq.WithMaxInFlight(8192)}, serverOpts...)...),
	}
	registerIQEcho(p.server)
	// Served with a context that can end, as a program serves (one that
	// ends on a signal, say), not with context.Background(), whose
	// handlers' contexts cost the Callee less than any program's would.
	ctx, cancel := context.WithCancel(context.Background())
	var done sync.WaitGroup
	done.Go(func() { _ = cc.Serve(ctx, p.client, nil) })
	done.Go(func() { _ = sc.Serve(ctx, p.server, nil) })
	tb.Cleanup(func() {
		defer cancel()
		_ = cc.Close()
		_ = sc.Close()
		done.Wait()
	})
	return p
}

// registerIQEcho gives server the handlers every iq peer's server has: it
// echoes gets of <query/> in echoNS and dataNS, answers one in wrongNS
// with an empty <query/>, and answers forecasts with a typed handler that
// returns what it decoded.
func registerIQEcho(server *iq.Endpoint) {
	echo := func(ctx context.Context, req *iq.IQ) (*iq.Element, error) { return req.Payload, nil }
	server.Callee.Get(echoNS, "query", echo)
	server.Callee.Get(dataNS, "query", echo)
	// A wrong answer, for the tests that check the checks.
	server.Callee.Get(wrongNS, "query", func(context.Context, *iq.IQ) (*iq.Element, error) {
		return iq.NewElement(wrongNS, "query"), nil
	})
	iq.HandleGet(server.Callee, func(ctx context.Context, req *forecast) (*forecast, error) {
		return req, nil
	})
}

// echo sends pl and returns the payload of the result.
func (p *iqPeer) echo(ctx context.Context, pl *iq.Element) (*iq.Element, error) {
	return p.client.Caller.Get(ctx, p.to, pl)
}

// echoOp is the benchmarks' round trip: an echo of pl, checked cheaply
// (its name and number of children).
func (p *iqPeer) echoOp(pl *iq.Element) func(context.Context) error {
	n := pl.NumChildren()
	return func(ctx context.Context) error {
		res, err := p.echo(ctx, pl)
		if err != nil {
			return fmt.Errorf("iq echo: %w", err)
		}
		if res == nil || res.Name != pl.Name || res.NumChildren() != n {
			return fmt.Errorf("iq echo: got %v, want <%s/> with %d children", res, pl.Name.Local, n)
		}
		return nil
	}
}

// echoReleaseOp is echoOp through Caller.Request, the response released
// (iq.IQ.Release) once checked: the round trip of a program that opts in
// to reusing the memory of the trees it reads.
func (p *iqPeer) echoReleaseOp(pl *iq.Element) func(context.Context) error {
	n := pl.NumChildren()
	return func(ctx context.Context) error {
		resp, err := p.client.Caller.Request(ctx, &iq.IQ{Type: iq.TypeGet, To: p.to, Payload: pl})
		if err != nil {
			return fmt.Errorf("iq echo: %w", err)
		}
		res := resp.Payload
		if res == nil || res.Name != pl.Name || res.NumChildren() != n {
			return fmt.Errorf("iq echo: got %v, want <%s/> with %d children", res, pl.Name.Local, n)
		}
		resp.Release()
		return nil
	}
}

// typedEchoOp is echoOp with the response decoded by iq.GetAs into a
// dataQuery.
func (p *iqPeer) typedEchoOp(pl *iq.Element) func(context.Context) error {
	n := pl.NumChildren()
	return func(ctx context.Context) error {
		v, err := iq.GetAs[dataQuery](ctx, p.client.Caller, p.to, pl)
		if err != nil {
			return fmt.Errorf("iq typed echo: %w", err)
		}
		if len(v.Items) != n || v.Items[n-1].Kind != "a&b" {
			return fmt.Errorf("iq typed echo: got %d items, want %d", len(v.Items), n)
		}
		return nil
	}
}

// typed is GetAs of a forecast, answered by HandleGet.
func (p *iqPeer) typed(ctx context.Context, f *forecast) (forecast, error) {
	return iq.GetAs[forecast](ctx, p.client.Caller, p.to, f)
}

// typedOp is the benchmarks' typed round trip, its answer compared field
// by field.
func (p *iqPeer) typedOp() func(context.Context) error {
	f := sampleForecast()
	return func(ctx context.Context) error {
		got, err := p.typed(ctx, &f)
		if err != nil {
			return fmt.Errorf("iq typed: %w", err)
		}
		if !sameForecast(&got, &f) {
			return fmt.Errorf("iq typed: got %+v, want %+v", got, f)
		}
		return nil
	}
}
