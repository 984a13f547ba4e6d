package iqotel

import (
	"context"
	"encoding/xml"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/propagation"

	"github.com/xmpp-iq/iq"
)

// inject returns a copy of req whose payload carries ctx's trace context
// as attributes in NSTrace, or req itself when the propagator writes
// nothing. Attributes in NSTrace the payload already had (a payload passed
// on from another request) are replaced.
func (in *Instrumentation) inject(ctx context.Context, req *iq.IQ) *iq.IQ {
	carrier := propagation.MapCarrier{}
	in.propagator().Inject(ctx, carrier)
	keys := make([]string, 0, len(carrier))
	for k := range carrier {
		if attrName(k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return req
	}
	slices.Sort(keys) // the same request, the same XML
	p := *req.Payload
	p.Attr = make([]xml.Attr, 0, len(req.Payload.Attr)+len(keys))
	for _, a := range req.Payload.Attr {
		if a.Name.Space != NSTrace {
			p.Attr = append(p.Attr, a)
		}
	}
	for _, k := range keys {
		p.Attr = append(p.Attr, xml.Attr{Name: xml.Name{Space: NSTrace, Local: k}, Value: carrier[k]})
	}
	out := *req
	out.Payload = &p
	return &out
}

// extract returns the fields of a trace context req carries, nil if
// none, and req without them: a copy whose payload has no attribute in
// NSTrace, or req itself when it had none.
func (in *Instrumentation) extract(req *iq.IQ) (propagation.MapCarrier, *iq.IQ) {
	var carrier propagation.MapCarrier
	n := 0
	for _, a := range req.Payload.Attr {
		if a.Name.Space == NSTrace {
			if carrier == nil {
				carrier = propagation.MapCarrier{}
			}
			carrier[a.Name.Local] = a.Value
			n++
		}
	}
	if n == 0 {
		return nil, req
	}
	p := *req.Payload
	p.Attr = make([]xml.Attr, 0, len(req.Payload.Attr)-n)
	for _, a := range req.Payload.Attr {
		if a.Name.Space != NSTrace {
			p.Attr = append(p.Attr, a)
		}
	}
	out := *req
	out.Payload = &p
	return carrier, &out
}

// attrName reports whether a propagator's field can be carried as an
// attribute's local name: the lower-case ASCII names the propagators of
// OpenTelemetry use (traceparent, tracestate, baggage, b3…).
func attrName(k string) bool {
	if k == "" || !(k[0] >= 'a' && k[0] <= 'z') {
		return false
	}
	return strings.IndexFunc(k, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) < 0
}
