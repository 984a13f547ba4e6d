package iqotel_test

import (
	"context"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/xmpp-iq/iq"
	iqotel "github.com/xmpp-iq/iq/otel"
)

// BenchmarkCallerInstrumented is a Caller's bookkeeping for one request
// answered at once, bare and instrumented: what the instrumentation costs
// per request, without a stream.
func BenchmarkCallerInstrumented(b *testing.B) {
	sdk := func(wire bool) []iq.Option {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		opts := []iqotel.Option{iqotel.WithTracerProvider(tp), iqotel.WithMeterProvider(mp)}
		if wire {
			opts = append(opts, iqotel.WithWirePropagation())
		}
		return iqotel.New(opts...).Options()
	}
	tests := []struct {
		name string
		opts []iq.Option
	}{
		{"bare", nil},
		{"global no-op providers", iqotel.New().Options()},
		{"SDK", sdk(false)},
		{"SDK with wire propagation", sdk(true)},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			var c *iq.Caller
			c = iq.NewCaller(iq.SenderFunc(func(_ context.Context, req *iq.IQ) error {
				c.Receive(req.Result(nil))
				return nil
			}), tt.opts...)
			defer c.Close()
			payload := iq.NewElement("urn:example:bench", "q")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Get(ctx, "", payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
