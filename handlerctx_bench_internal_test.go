package iq

import (
	"context"
	"testing"
)

// BenchmarkHandlerContext is what a handler's context costs to make and
// end (handlerContext, stopHandler), derived from a serve context that
// can end, as a program's is, and from one that cannot; "parallel" makes
// them on every P at once, from the same serve context, as the handlers
// of a busy Callee do.
//
//	go test -run '^$' -bench HandlerContext -cpu 1,2 .
func BenchmarkHandlerContext(b *testing.B) {
	serve, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, tt := range []struct {
		name string
		ctx  context.Context
	}{
		{"background", context.Background()},
		{"cancellable", serve},
	} {
		b.Run(tt.name, func(b *testing.B) {
			c := NewCallee(SenderFunc(func(context.Context, *IQ) error { return nil }))
			defer c.Close()
			b.ReportAllocs()
			for b.Loop() {
				hctx, cancel, id := c.handlerContext(tt.ctx)
				_ = hctx.Err()
				c.stopHandler(cancel, id)
			}
		})
		b.Run(tt.name+"/parallel", func(b *testing.B) {
			c := NewCallee(SenderFunc(func(context.Context, *IQ) error { return nil }))
			defer c.Close()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					hctx, cancel, id := c.handlerContext(tt.ctx)
					_ = hctx.Err()
					c.stopHandler(cancel, id)
				}
			})
		})
	}
}
