package bench

import (
	"context"
	"sync"
	"testing"

	"github.com/xmpp-iq/iq"
)

// BenchmarkCaller is the Caller's own bookkeeping: Request and Receive,
// no XML. The Sender answers at once with response IQs from a pool, so
// that what is measured is the Caller's cost.
func BenchmarkCaller(b *testing.B) {
	newCaller := func() *iq.Caller {
		var c *iq.Caller
		pool := sync.Pool{New: func() any { return &iq.IQ{Type: iq.TypeResult} }}
		c = iq.NewCaller(iq.SenderFunc(func(ctx context.Context, req *iq.IQ) error {
			resp := pool.Get().(*iq.IQ)
			resp.ID = req.ID
			c.Receive(resp)
			pool.Put(resp)
			return nil
		}), iq.WithMaxPending(1<<20))
		return c
	}
	ctx := context.Background()
	pl := smallPayload()
	b.Run("seq", func(b *testing.B) {
		c := newCaller()
		req := &iq.IQ{Type: iq.TypeGet, Payload: pl}
		b.ReportAllocs()
		for range b.N {
			if _, err := c.Request(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("par", func(b *testing.B) {
		c := newCaller()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			req := &iq.IQ{Type: iq.TypeGet, Payload: pl}
			for pb.Next() {
				if _, err := c.Request(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
