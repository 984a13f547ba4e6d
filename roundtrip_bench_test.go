package iq_test

import (
	"context"
	"net"
	"runtime"
	"sync"
	"testing"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// The round trips below measure the Caller and the Callee as users run
// them: an Element echo between two Endpoints served by stream.Conns over
// net.Pipe, one request at a time and 64 in flight. Compare an old and a
// new build interleaved, with benchstat (see BENCHMARKS.md).

const benchNS = "urn:example:echo"

type benchPair struct {
	client, server *iq.Endpoint
	cc, sc         *stream.Conn
	done           sync.WaitGroup
}

func newBenchPair(b *testing.B, inline, tcp bool) *benchPair {
	p1, p2 := net.Pipe()
	if tcp {
		p1, p2 = tcpPair(b)
	}
	p := &benchPair{cc: stream.New(p1), sc: stream.New(p2)}
	p.client = iq.NewEndpoint(p.cc, iq.WithMaxPending(1<<20))
	p.server = iq.NewEndpoint(p.sc, iq.WithMaxInFlight(1024))
	echo := func(ctx context.Context, req *iq.IQ) (*iq.Element, error) { return req.Payload, nil }
	if inline {
		benchRegisterInline(p.server.Callee, echo)
	} else {
		p.server.Callee.Get(benchNS, "query", echo)
	}
	p.done.Add(2)
	go func() { defer p.done.Done(); _ = p.cc.Serve(context.Background(), p.client, nil) }()
	go func() { defer p.done.Done(); _ = p.sc.Serve(context.Background(), p.server, nil) }()
	b.Cleanup(func() { _ = p.cc.Close(); p.done.Wait() })
	return p
}

func benchPayload() *iq.Element {
	return iq.NewElement(benchNS, "query").Append(iq.NewElement(benchNS, "v").AppendText("hello"))
}

func (p *benchPair) roundTrip(b *testing.B, ctx context.Context, pl *iq.Element) {
	res, err := p.client.Caller.Get(ctx, "", pl)
	if err != nil || res == nil {
		b.Errorf("round trip: %v", err)
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(b *testing.B) (net.Conn, net.Conn) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	c1, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	c2 := <-accepted
	if c2 == nil {
		b.Fatal("accept failed")
	}
	b.Cleanup(func() { _ = c2.Close() })
	return c1, c2
}

func benchRoundTrip(b *testing.B, inline bool) {
	for _, tr := range []struct {
		name string
		tcp  bool
	}{{"pipe", false}, {"tcp", true}} {
		b.Run(tr.name, func(b *testing.B) { benchRoundTripOn(b, inline, tr.tcp) })
	}
}

func benchRoundTripOn(b *testing.B, inline, tcp bool) {
	ctx := context.Background()
	b.Run("seq", func(b *testing.B) {
		p := newBenchPair(b, inline, tcp)
		pl := benchPayload()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			p.roundTrip(b, ctx, pl)
		}
	})
	b.Run("inflight64", func(b *testing.B) {
		p := newBenchPair(b, inline, tcp)
		pl := benchPayload()
		b.ReportAllocs()
		b.SetParallelism(64 / runtime.GOMAXPROCS(0))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p.roundTrip(b, ctx, pl)
			}
		})
	})
}

// BenchmarkEndpointRoundTrip is the Element echo with the handler run on
// a worker goroutine, the default, over net.Pipe and loopback TCP.
func BenchmarkEndpointRoundTrip(b *testing.B) { benchRoundTrip(b, false) }

// BenchmarkCallerDirect measures the Caller alone: its Sender answers
// each request from within SendIQ, on the same goroutine, so that what
// is timed is Request's and Receive's own work, without a stream or a
// goroutine hand-off.
func BenchmarkCallerDirect(b *testing.B) {
	var c *iq.Caller
	res := &iq.IQ{Type: iq.TypeResult, Payload: benchPayload()}
	c = iq.NewCaller(iq.SenderFunc(func(_ context.Context, out *iq.IQ) error {
		r := *res
		r.ID = out.ID
		if !c.Receive(&r) {
			b.Error("response dropped")
		}
		return nil
	}))
	defer c.Close()
	ctx, pl := context.Background(), benchPayload()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Get(ctx, "", pl); err != nil {
			b.Fatal(err)
		}
	}
}
