package iq_test

import (
	"context"
	"testing"

	"github.com/xmpp-iq/iq"
)

// BenchmarkObserved is a Caller's and a Callee's bookkeeping for one
// request, bare and with an ExpvarMetrics given to WithMetrics and to
// Observe: what the built-in metrics cost per request on each side,
// without a stream. Run it with -cpu 1,2 to see the cost under
// contention too (the parallel rows).
//
//	go test -run '^$' -bench Observed -benchmem .
func BenchmarkObserved(b *testing.B) {
	for _, tc := range []struct {
		name    string
		metrics bool
	}{{"bare", false}, {"expvar", true}} {
		opts := func() ([]iq.Option, *iq.ExpvarMetrics) {
			if !tc.metrics {
				return nil, nil
			}
			m := iq.NewExpvarMetrics()
			return []iq.Option{iq.WithMetrics(m)}, m
		}
		b.Run("caller/"+tc.name, func(b *testing.B) {
			o, _ := opts()
			var c *iq.Caller
			c = iq.NewCaller(iq.SenderFunc(func(_ context.Context, req *iq.IQ) error {
				c.Receive(req.Result(nil))
				return nil
			}), o...)
			defer c.Close()
			payload := iq.NewElement("urn:example:bench", "q")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := c.Get(ctx, "", payload); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run("callee/"+tc.name, func(b *testing.B) {
			o, m := opts()
			replied := make(chan struct{}, 1)
			c := iq.NewCallee(iq.SenderFunc(func(context.Context, *iq.IQ) error {
				replied <- struct{}{}
				return nil
			}), o...)
			defer c.Close()
			if m != nil {
				c.Use(iq.Observe(m))
			}
			c.Get("urn:example:bench", "q", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
				return req.Payload, nil
			})
			req := &iq.IQ{ID: "b1", Type: iq.TypeGet, From: "a@example.net/r",
				Payload: iq.NewElement("urn:example:bench", "q")}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				c.Receive(ctx, req)
				<-replied
			}
		})
	}
}
