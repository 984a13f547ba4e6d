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

// instrumentations are the settings the benchmarks compare: none; the
// global providers as a program that configures no OpenTelemetry has them
// (no-op); the SDK, spans exported to nowhere, one by one, and metrics
// aggregated for a reader that is never read; the SDK with the trace
// context carried on the wire too.
func instrumentations() []struct {
	name string
	inst *iqotel.Instrumentation
} {
	sdk := func(wire bool) *iqotel.Instrumentation {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		opts := []iqotel.Option{iqotel.WithTracerProvider(tp), iqotel.WithMeterProvider(mp)}
		if wire {
			opts = append(opts, iqotel.WithWirePropagation())
		}
		return iqotel.New(opts...)
	}
	return []struct {
		name string
		inst *iqotel.Instrumentation
	}{
		{"bare", nil},
		{"global no-op providers", iqotel.New()},
		{"SDK", sdk(false)},
		{"SDK with wire propagation", sdk(true)},
	}
}

// BenchmarkCallerInstrumented is a Caller's bookkeeping for one request
// answered at once, bare and instrumented: what the instrumentation costs
// per request on the client's side, without a stream.
//
//	go test -run '^$' -bench Instrumented -benchmem
func BenchmarkCallerInstrumented(b *testing.B) {
	for _, tt := range instrumentations() {
		b.Run(tt.name, func(b *testing.B) {
			var opts []iq.Option
			if tt.inst != nil {
				opts = tt.inst.Options()
			}
			var c *iq.Caller
			c = iq.NewCaller(iq.SenderFunc(func(_ context.Context, req *iq.IQ) error {
				c.Receive(req.Result(nil))
				return nil
			}), opts...)
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

// BenchmarkCalleeInstrumented is a Callee serving one request at a time,
// from Receive to its reply, bare and with the middleware and the
// Options: what the instrumentation costs per request on the server's
// side (the hand-off to the handler's goroutine included in every row).
func BenchmarkCalleeInstrumented(b *testing.B) {
	for _, tt := range instrumentations() {
		b.Run(tt.name, func(b *testing.B) {
			var opts []iq.Option
			if tt.inst != nil {
				opts = tt.inst.Options()
			}
			replied := make(chan struct{}, 1)
			c := iq.NewCallee(iq.SenderFunc(func(context.Context, *iq.IQ) error {
				replied <- struct{}{}
				return nil
			}), opts...)
			defer c.Close()
			if tt.inst != nil {
				c.Use(tt.inst.Middleware())
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
