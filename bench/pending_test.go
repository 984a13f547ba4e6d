package bench

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/xmpp-iq/iq"
)

const sinkNS = "urn:example:sink"

// BenchmarkPending measures the heap each pending request holds (B/pending)
// with 100,000 (and, with -bench.full, 1,000,000) requests started through
// Caller.Go and never answered. ns/op is the time to start them all.
func BenchmarkPending(b *testing.B) {
	counts := []int{100_000}
	if *full {
		counts = append(counts, 1_000_000)
	}
	for _, n := range counts {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				c := iq.NewCaller(iq.SenderFunc(func(context.Context, *iq.IQ) error { return nil }),
					iq.WithMaxPending(n+1))
				pl := smallPayload()
				// Room for every call, so that Close delivers them all
				// without a goroutine each; allocated, with the requests,
				// before the heap is measured.
				done := make(chan *iq.Call, n)
				reqs := make([]iq.IQ, n)
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				b.StartTimer()
				for j := range reqs {
					reqs[j] = iq.IQ{Type: iq.TypeGet, Payload: pl}
					c.Go(context.Background(), &reqs[j], done)
				}
				b.StopTimer()
				runtime.GC()
				runtime.ReadMemStats(&after)
				if c.Pending() != n {
					b.Fatalf("pending %d, want %d", c.Pending(), n)
				}
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "B/pending")
				b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
				_ = c.Close()
				for range n {
					if call := <-done; call.Err == nil {
						b.Fatal("a pending call ended without error on Close")
					}
				}
				runtime.KeepAlive(reqs)
				b.StartTimer()
			}
		})
	}
}

// BenchmarkPendingLatency is one iq round trip over net.Pipe, one at a
// time, while 10 (and, with -bench.full, 1,000,000) other requests of the
// same Caller wait for answers that never come: the latency must not
// depend on how many are pending. It reports the heap each of those
// holds (B/pending) too, measured as BenchmarkPending does.
func BenchmarkPendingLatency(b *testing.B) {
	// The client drops the requests meant to stay pending instead of
	// writing them: the responder never sees them.
	sink := func(s iq.Sender) iq.Sender {
		return iq.SenderFunc(func(ctx context.Context, i *iq.IQ) error {
			if i.Payload != nil && i.Payload.Name.Space == sinkNS {
				return nil
			}
			return s.SendIQ(ctx, i)
		})
	}
	for _, n := range pendingCounts() {
		// One peer per row, filled once: the benchmark function runs
		// several times as b.N grows.
		c, s := pipeConns(b)
		p := newIQPeer(b, c, s, sink, iq.WithTimeout(time.Hour))
		done := make(chan *iq.Call, n)
		reqs := make([]iq.IQ, n)
		pl := iq.NewElement(sinkNS, "query")
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for j := range reqs {
			reqs[j] = iq.IQ{Type: iq.TypeGet, Payload: pl}
			p.client.Caller.Go(context.Background(), &reqs[j], done)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if got := p.client.Caller.Pending(); got != n {
			b.Fatalf("pending %d, want %d", got, n)
		}
		perPending := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
		op := p.echoOp(smallPayload())
		b.Run(fmt.Sprintf("pending=%d", n), func(b *testing.B) {
			drive(b, 1, op)
			if got := p.client.Caller.Pending(); got != n {
				b.Fatalf("pending %d after the round trips, want %d", got, n)
			}
			// The same measure as BenchmarkPending's, of the same fill:
			// scripts/bench.sh takes the 1,000,000 figure from here
			// rather than fill a million requests twice a round.
			b.ReportMetric(perPending, "B/pending")
		})
		runtime.KeepAlive(reqs)
	}
}
