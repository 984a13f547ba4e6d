package iqotel_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
	iqotel "github.com/xmpp-iq/iq/otel"
)

// Two iq services, both instrumented, one asking the other over a Pair:
// the spans (a client span and its server child, one trace) and the
// metrics are written to standard output as JSON. The output varies from
// run to run (ids, times), so it is not checked here; TestExampleStdout
// runs it.
func Example_stdout() {
	spans, err := stdouttrace.New(stdouttrace.WithWriter(os.Stdout))
	if err != nil {
		log.Fatal(err)
	}
	metrics, err := stdoutmetric.New(stdoutmetric.WithWriter(os.Stdout))
	if err != nil {
		log.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(metrics)))
	inst := iqotel.New(iqotel.WithTracerProvider(tp), iqotel.WithMeterProvider(mp), iqotel.WithWirePropagation())

	// Each service would build its Endpoint with inst.Options() and its
	// Callee.Use(inst.Middleware()); a Pair gives both ends the options.
	p := iqtest.NewPair("client@example.com/app", "ping.example.com", iqtest.WithEndpointOptions(inst.Options()...))
	p.B.Callee.Use(inst.Middleware())
	p.B.Callee.Get("urn:xmpp:ping", "ping", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })

	if _, err := p.A.Caller.Get(context.Background(), "ping.example.com", iq.NewElement("urn:xmpp:ping", "ping")); err != nil {
		log.Fatal(err)
	}
	fmt.Println("pong")
	p.Close()                             // the server span has ended once its reply is sent
	_ = tp.Shutdown(context.Background()) // flushes the spans
	_ = mp.Shutdown(context.Background()) // exports the metrics once more
}
