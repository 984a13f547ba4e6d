package iqotel

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/xmpp-iq/iq"
)

// ScopeName is the instrumentation scope of the tracer and meter this
// package uses.
const ScopeName = "github.com/xmpp-iq/iq/otel"

// NSTrace is the namespace of the attributes that carry a trace context on
// a request's payload (see WithWirePropagation).
const NSTrace = "urn:xmpp-iq:trace:0"

// Attribute keys of this package's own, beside the semantic conventions'.
const (
	AttrIQType        = attribute.Key("xmpp.iq.type")
	AttrIQID          = attribute.Key("xmpp.iq.id")
	AttrOutcome       = attribute.Key("xmpp.iq.outcome")
	AttrCondition     = attribute.Key("xmpp.stanza_error.condition")
	AttrStanzaErrType = attribute.Key("xmpp.stanza_error.type")
)

// The semantic conventions' keys used (see the package documentation).
const (
	attrRPCSystem  = attribute.Key("rpc.system.name")
	attrRPCMethod  = attribute.Key("rpc.method")
	attrStatusCode = attribute.Key("rpc.response.status_code")
	attrErrorType  = attribute.Key("error.type")
	attrServerAddr = attribute.Key("server.address")
	attrClientAddr = attribute.Key("client.address")
)

var systemXMPP = attrRPCSystem.String("xmpp")

// Option configures an Instrumentation.
type Option func(*config)

type config struct {
	tp         trace.TracerProvider
	mp         metric.MeterProvider
	prop       propagation.TextMapPropagator
	wire       bool
	publicPeer bool
}

// WithTracerProvider sets where spans go; otel.GetTracerProvider() by
// default. nil keeps the default.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp != nil {
			c.tp = tp
		}
	}
}

// WithMeterProvider sets where metrics go; otel.GetMeterProvider() by
// default. nil keeps the default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if mp != nil {
			c.mp = mp
		}
	}
}

// WithPropagators sets how a trace context is written to and read from a
// request (WithWirePropagation); otel.GetTextMapPropagator() by default,
// or W3C Trace Context while that one has no fields (the global propagator
// does nothing until otel.SetTextMapPropagator is called). Only fields
// whose names can be XML attribute names are carried. nil keeps the
// default.
func WithPropagators(p propagation.TextMapPropagator) Option {
	return func(c *config) {
		if p != nil {
			c.prop = p
		}
	}
}

// WithWirePropagation turns on context propagation on the wire (see the
// package documentation): requests carry their client span's context as
// attributes in NSTrace on their payload, and the middleware continues the
// trace an incoming request carries and takes those attributes off the
// payload its handler sees. Off by default: nothing is added to requests,
// and incoming contexts are ignored.
func WithWirePropagation() Option {
	return func(c *config) { c.wire = true }
}

// WithPublicEndpoint has the middleware start a new trace for every
// incoming request, linked to the context the request carries (when
// WithWirePropagation is on) rather than a child of it: for a service that
// does not trust its requesters to choose its traces. A parent span in the
// handler's context (one the program started around Receive) is still
// used.
func WithPublicEndpoint() Option {
	return func(c *config) { c.publicPeer = true }
}

// Instrumentation makes the spans and metrics of an Endpoint, or of any
// number of Callers and Callees. It is safe for concurrent use.
type Instrumentation struct {
	tracer  trace.Tracer
	prop    propagation.TextMapPropagator
	wire    bool
	public  bool
	metrics *Metrics
	attrs   *attrCache // the spans' and the metrics' per method
}

// New returns an Instrumentation configured by opts.
func New(opts ...Option) *Instrumentation {
	var cfg config
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.tp == nil {
		cfg.tp = otel.GetTracerProvider()
	}
	if cfg.mp == nil {
		cfg.mp = otel.GetMeterProvider()
	}
	attrs := new(attrCache)
	return &Instrumentation{
		tracer:  cfg.tp.Tracer(ScopeName, trace.WithInstrumentationVersion(Version)),
		prop:    cfg.prop,
		wire:    cfg.wire,
		public:  cfg.publicPeer,
		metrics: newMetrics(cfg.mp.Meter(ScopeName, metric.WithInstrumentationVersion(Version)), attrs),
		attrs:   attrs,
	}
}

// Version is this instrumentation's version, reported with its scope.
const Version = "0.1.0"

// Options returns the options that instrument a Caller, a Callee or an
// Endpoint at construction: iq.WithCallHook(CallHook()) for client spans
// and iq.WithMetrics(Metrics()) for the client-side metrics and the
// spoofed responses and dropped replies. Pass them to iq.NewEndpoint (or
// iqtest.WithEndpointOptions), after any iq.WithMetrics of one's own,
// which they replace.
func (in *Instrumentation) Options() []iq.Option {
	return []iq.Option{iq.WithCallHook(in.CallHook()), iq.WithMetrics(in.metrics)}
}

// Metrics returns the iq.Metrics (and iq.CallMetrics) that records to the
// meter provider's instruments; Options and Middleware use it.
func (in *Instrumentation) Metrics() *Metrics { return in.metrics }

// propagator returns the propagator to use now.
func (in *Instrumentation) propagator() propagation.TextMapPropagator {
	if in.prop != nil {
		return in.prop
	}
	if p := otel.GetTextMapPropagator(); len(p.Fields()) > 0 {
		return p
	}
	return propagation.TraceContext{}
}

// spanName names a request's span: "get {urn:xmpp:ping}ping".
func spanName(t iq.Type, method string) string { return string(t) + " " + method }

// methodOf returns the attributes of the method p names (rpc.method: the
// payload in Clark notation).
func (in *Instrumentation) methodOf(p *iq.Element) *methodAttrs {
	return in.attrs.method(p.Name.Space, p.Name.Local)
}

// The span kinds, as options made once.
var (
	clientKind = trace.WithSpanKind(trace.SpanKindClient)
	serverKind = trace.WithSpanKind(trace.SpanKindServer)
)

// CallHook returns the iq.CallHook that makes a client span for every
// request of a Caller given it with iq.WithCallHook (Options does), as a
// child of the span in the request's context, and, with
// WithWirePropagation, sends the span's context with the request.
func (in *Instrumentation) CallHook() iq.CallHook {
	return func(ctx context.Context, req *iq.IQ) (*iq.IQ, func(*iq.IQ, error)) {
		m := in.methodOf(req.Payload)
		attrs := make([]attribute.KeyValue, 4, 5)
		attrs[0], attrs[1] = systemXMPP, m.methodKV
		attrs[2], attrs[3] = AttrIQType.String(string(req.Type)), AttrIQID.String(req.ID)
		if req.To != "" {
			attrs = append(attrs, attrServerAddr.String(req.To))
		}
		ctx, span := in.tracer.Start(ctx, m.spanName(req.Type), clientKind, trace.WithAttributes(attrs...))
		send := req
		if in.wire {
			send = in.inject(ctx, req)
		}
		return send, func(resp *iq.IQ, err error) {
			endSpan(span, err, true)
		}
	}
}

// endSpan records how a request ended on its span and ends it. client
// says whose span it is: every failure is an Error on the client's, only
// the server's own faults on the server's.
func endSpan(span trace.Span, err error, client bool) {
	if !span.IsRecording() {
		// Nothing would keep the attributes or the status (no SDK, or a
		// span not sampled): End alone, without making them.
		span.End()
		return
	}
	outcome, cond := iq.OutcomeOf(err)
	span.SetAttributes(AttrOutcome.String(string(outcome)))
	switch {
	case outcome == iq.OutcomeResult:
		span.SetAttributes(attrStatusCode.String("result"))
	case outcome == iq.OutcomeError:
		attrs := []attribute.KeyValue{attrStatusCode.String(string(cond)),
			attrErrorType.String(string(cond)), AttrCondition.String(string(cond))}
		if t := stanzaErrorType(err); t != "" {
			attrs = append(attrs, AttrStanzaErrType.String(t))
		}
		span.SetAttributes(attrs...)
		if client || serverFault(cond) {
			span.SetStatus(codes.Error, err.Error())
		}
	default:
		span.SetAttributes(attrErrorType.String(string(outcome)))
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// serverFault reports whether an error reply with cond blames the server
// rather than the request.
func serverFault(cond iq.Condition) bool {
	switch cond {
	case iq.InternalServerError, iq.UndefinedCondition, iq.RemoteServerTimeout, iq.ResourceConstraint:
		return true
	}
	return false
}

// panicError is the error a server span records for a panicking handler.
type panicError struct{ p any }

func (e panicError) Error() string { return fmt.Sprintf("iqotel: handler panicked: %v", e.p) }

// stanzaErrorType is the type of the stanza error err is or wraps.
func stanzaErrorType(err error) string {
	var serr *iq.StanzaError
	if errors.As(err, &serr) && serr != nil {
		return string(serr.Type)
	}
	return ""
}
