package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/rpc"
	"testing"
)

// Echo is the net/rpc service the netrpc rows call: it returns the
// payload it was sent. (net/rpc needs an exported type and method.)
type Echo struct{}

// EchoMsg carries a payload of as many bytes as iq's element encodes to.
type EchoMsg struct{ Payload []byte }

// Echo copies args to reply.
func (Echo) Echo(args *EchoMsg, reply *EchoMsg) error {
	reply.Payload = args.Payload
	return nil
}

// Short answers with all but the last byte of the payload, for the tests
// that check the checks.
type Short struct{}

// Echo copies all but the last byte of args to reply.
func (Short) Echo(args *EchoMsg, reply *EchoMsg) error {
	reply.Payload = args.Payload[:len(args.Payload)-1]
	return nil
}

// netrpcPeer is a net/rpc client and server (gob) over one connection.
// method is the one called: Echo.Echo unless a test says otherwise.
type netrpcPeer struct {
	client *rpc.Client
	method string
}

func newNetrpcPeer(tb testing.TB, client, server net.Conn) *netrpcPeer {
	srv := rpc.NewServer()
	if err := srv.Register(Echo{}); err != nil {
		tb.Fatalf("rpc register: %v", err)
	}
	if err := srv.Register(Short{}); err != nil {
		tb.Fatalf("rpc register: %v", err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.ServeConn(server) }()
	p := &netrpcPeer{client: rpc.NewClient(client), method: "Echo.Echo"}
	tb.Cleanup(func() {
		_ = p.client.Close()
		_ = server.Close()
		<-done
	})
	return p
}

// echo calls the method with pl and returns the reply's payload.
func (p *netrpcPeer) echo(_ context.Context, pl []byte) ([]byte, error) {
	var reply EchoMsg
	err := p.client.Call(p.method, &EchoMsg{Payload: pl}, &reply)
	return reply.Payload, err
}

// echoOp is the benchmarks' round trip: the payload's length checked, and
// its first and last bytes.
func (p *netrpcPeer) echoOp(pl []byte) func(context.Context) error {
	return func(ctx context.Context) error {
		got, err := p.echo(ctx, pl)
		if err != nil {
			return fmt.Errorf("net/rpc echo: %w", err)
		}
		if len(got) != len(pl) || !bytes.HasPrefix(got, pl[:1]) || got[len(got)-1] != pl[len(pl)-1] {
			return fmt.Errorf("net/rpc echo: got %d bytes, want %d", len(got), len(pl))
		}
		return nil
	}
}
