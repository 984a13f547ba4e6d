package stream_test

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// echoPair is a Caller and an echoing Callee, each on its own served Conn,
// over the two ends of a transport.
type echoPair struct {
	client *iq.Endpoint
	cc     *stream.Conn
	done   sync.WaitGroup
}

func newEchoPair(b *testing.B, c1, c2 net.Conn) *echoPair {
	p := &echoPair{cc: stream.New(c1)}
	sc := stream.New(c2)
	p.client = iq.NewEndpoint(p.cc, iq.WithMaxPending(1<<20))
	server := iq.NewEndpoint(sc, iq.WithMaxInFlight(1024))
	server.Callee.Get(echoNS, "query", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		return req.Payload, nil
	})
	p.done.Add(2)
	go func() { defer p.done.Done(); _ = p.cc.Serve(context.Background(), p.client, nil) }()
	go func() { defer p.done.Done(); _ = sc.Serve(context.Background(), server, nil) }()
	b.Cleanup(func() { _ = p.cc.Close(); p.done.Wait() })
	return p
}

// countConn counts the Writes made on a transport.
type countConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countConn) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// cpuTime is the CPU time the process has used, user and system, in ns:
// on a loaded machine it says more about a change than the wall clock.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkEcho is the Element echo round trip through two Conns (a
// Caller's get, a Callee's handler returning the payload, the result
// back), over net.Pipe and loopback TCP, one at a time and with 64 in
// flight: the write path's cost shows in the 64 rows, where stanzas from
// many goroutines meet at one transport. writes/op counts the transport
// Writes of both Conns per round trip (2 when none is coalesced), which
// the machine's load does not blur; cpu-ns/op is the process's CPU time
// per round trip (the peer's goroutines included).
func BenchmarkEcho(b *testing.B) {
	pl := iq.NewElement(echoNS, "query").Append(iq.NewElement(echoNS, "v").AppendText("hello"))
	benchTransports(b, "inflight64", func(b *testing.B, c1, c2 net.Conn, writes *atomic.Int64) func() error {
		p := newEchoPair(b, countConn{c1, writes}, countConn{c2, writes})
		return func() error {
			res, err := p.client.Caller.Get(context.Background(), "", pl)
			if err == nil && res == nil {
				err = errors.New("no response")
			}
			return err
		}
	})
}

// BenchmarkSend is the write path alone: SendIQ of a small result to a
// peer that reads everything at once, one sender at a time and 64 at
// once.
func BenchmarkSend(b *testing.B) {
	res := &iq.IQ{ID: "abcdefghijklmnop", Type: iq.TypeResult, To: "user@example.com/res",
		Payload: iq.NewElement(echoNS, "query").Append(iq.NewElement(echoNS, "v").AppendText("hello"))}
	benchTransports(b, "par64", func(b *testing.B, c1, c2 net.Conn, writes *atomic.Int64) func() error {
		c := stream.New(countConn{c1, writes})
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			buf := make([]byte, 64<<10)
			for {
				if _, err := c2.Read(buf); err != nil {
					return
				}
			}
		}()
		b.Cleanup(func() { _ = c.Close(); _ = c2.Close(); <-drained })
		return func() error { return c.SendIQ(context.Background(), res) }
	})
}

// benchTransports runs op, made by setup for a fresh pair of connections
// (writes counts the Writes of those setup wraps with countConn), over
// net.Pipe and loopback TCP, one at a time ("seq") and from 64 goroutines
// (parName), reporting writes/op and cpu-ns/op beside the usual figures.
func benchTransports(b *testing.B, parName string, setup func(b *testing.B, c1, c2 net.Conn, writes *atomic.Int64) func() error) {
	for _, tr := range []struct {
		name string
		pair func(testing.TB) (net.Conn, net.Conn)
	}{
		{"pipe", func(testing.TB) (net.Conn, net.Conn) { return net.Pipe() }},
		{"tcp", tcpPair},
	} {
		for _, par := range []int{1, 64} {
			name := tr.name + "/seq"
			if par > 1 {
				name = tr.name + "/" + parName
			}
			b.Run(name, func(b *testing.B) {
				c1, c2 := tr.pair(b)
				var writes atomic.Int64
				op := setup(b, c1, c2, &writes)
				b.ReportAllocs()
				b.ResetTimer()
				writes.Store(0)
				cpu0 := cpuTime()
				defer func() {
					b.ReportMetric(float64(writes.Load())/float64(b.N), "writes/op")
					b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
				}()
				if par == 1 {
					for i := 0; i < b.N; i++ {
						if err := op(); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				b.SetParallelism(par / runtime.GOMAXPROCS(0))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := op(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
