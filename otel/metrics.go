package iqotel

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/xmpp-iq/iq"
)

// Metrics is an iq.Metrics and iq.CallMetrics that records to
// OpenTelemetry instruments (listed in the package documentation). Get one
// from Instrumentation.Metrics; it is safe for concurrent use.
type Metrics struct {
	clientDuration metric.Float64Histogram
	serverDuration metric.Float64Histogram
	clientRequests metric.Int64Counter
	serverRequests metric.Int64Counter
	pending        metric.Int64UpDownCounter
	inFlight       metric.Int64UpDownCounter
	timeouts       metric.Int64Counter
	spoofed        metric.Int64Counter
	dropped        metric.Int64Counter

	attrs *attrCache // the measurements' attributes, per method and outcome
}

var (
	_ iq.Metrics     = (*Metrics)(nil)
	_ iq.CallMetrics = (*Metrics)(nil)
)

// durationBuckets are the bucket boundaries the semantic conventions
// advise for RPC durations, in seconds.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

func newMetrics(m metric.Meter, attrs *attrCache) *Metrics {
	// An instrument that cannot be made is reported to OpenTelemetry's
	// error handler; the API returns a working no-op one with the error.
	check := func(err error) {
		if err != nil {
			otel.Handle(err)
		}
	}
	ms := Metrics{attrs: attrs}
	var err error
	ms.clientDuration, err = m.Float64Histogram("rpc.client.call.duration", metric.WithUnit("s"),
		metric.WithDescription("How long the requests a Caller made took, from send to end."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	check(err)
	ms.serverDuration, err = m.Float64Histogram("rpc.server.call.duration", metric.WithUnit("s"),
		metric.WithDescription("How long handlers took to answer."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	check(err)
	ms.clientRequests, err = m.Int64Counter("xmpp.iq.client.requests", metric.WithUnit("{request}"),
		metric.WithDescription("Requests a Caller made, by outcome and condition."))
	check(err)
	ms.serverRequests, err = m.Int64Counter("xmpp.iq.server.requests", metric.WithUnit("{request}"),
		metric.WithDescription("Requests handlers answered, by outcome and condition."))
	check(err)
	ms.pending, err = m.Int64UpDownCounter("xmpp.iq.client.pending", metric.WithUnit("{request}"),
		metric.WithDescription("Requests a Caller is waiting on."))
	check(err)
	ms.inFlight, err = m.Int64UpDownCounter("xmpp.iq.server.in_flight", metric.WithUnit("{request}"),
		metric.WithDescription("Requests being handled."))
	check(err)
	ms.timeouts, err = m.Int64Counter("xmpp.iq.server.timeouts", metric.WithUnit("{request}"),
		metric.WithDescription("Handlers that ran out of time."))
	check(err)
	ms.spoofed, err = m.Int64Counter("xmpp.iq.client.spoofed_responses", metric.WithUnit("{response}"),
		metric.WithDescription("Responses dropped because their sender may not answer the request they name."))
	check(err)
	ms.dropped, err = m.Int64Counter("xmpp.iq.server.dropped_replies", metric.WithUnit("{reply}"),
		metric.WithDescription("Replies the Sender failed to send."))
	check(err)
	return &ms
}

// The Metrics interfaces carry no context: the measurements are recorded
// with none, and so carry no exemplar.
var bg = context.Background()

// Request implements iq.Metrics: a request reached a handler.
func (m *Metrics) Request(space, local string) {
	m.inFlight.Add(bg, 1, m.attrs.method(space, local).add...)
}

// Reply implements iq.Metrics: the handler answered.
func (m *Metrics) Reply(space, local string, cond iq.Condition, latency time.Duration) {
	ma := m.attrs.method(space, local)
	m.inFlight.Add(bg, -1, ma.add...)
	outcome := iq.OutcomeResult
	if cond != "" {
		outcome = iq.OutcomeError
	}
	o := ma.outcome(outcome, cond)
	m.serverRequests.Add(bg, 1, o.add...)
	m.serverDuration.Record(bg, latency.Seconds(), o.record...)
}

// Timeout implements iq.Metrics.
func (m *Metrics) Timeout(space, local string) {
	m.timeouts.Add(bg, 1, m.attrs.method(space, local).add...)
}

// systemOnly carries rpc.system.name alone, for the measurements of no
// method.
var systemOnly = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(systemXMPP))}

// DroppedReply implements iq.Metrics.
func (m *Metrics) DroppedReply() { m.dropped.Add(bg, 1, systemOnly...) }

// SpoofedResponse implements iq.Metrics.
func (m *Metrics) SpoofedResponse() { m.spoofed.Add(bg, 1, systemOnly...) }

// CallStart implements iq.CallMetrics.
func (m *Metrics) CallStart(space, local string) {
	m.pending.Add(bg, 1, m.attrs.method(space, local).add...)
}

// CallEnd implements iq.CallMetrics.
func (m *Metrics) CallEnd(space, local string, outcome iq.Outcome, cond iq.Condition, latency time.Duration) {
	ma := m.attrs.method(space, local)
	m.pending.Add(bg, -1, ma.add...)
	o := ma.outcome(outcome, cond)
	m.clientRequests.Add(bg, 1, o.add...)
	m.clientDuration.Record(bg, latency.Seconds(), o.record...)
}
