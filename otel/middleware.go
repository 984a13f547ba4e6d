package iqotel

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/xmpp-iq/iq"
)

// Middleware returns the iq.Middleware that makes a server span for every
// request that reaches a handler and records the server-side metrics
// (through iq.Observe and Metrics). Give it to Callee.Use first, so that
// it is the outermost and its span covers the other middleware too.
//
// The span is a child of the span in the handler's context, if any; else,
// with WithWirePropagation, of the context the request carries (or, with
// WithPublicEndpoint, a new trace linked to it). The handler's context
// holds the server span, so that the requests a handler makes with it are
// its children.
//
// The metrics are those of iq.Observe(Metrics()), which the middleware
// includes: do not add that one too, or requests count twice.
func (in *Instrumentation) Middleware() iq.Middleware {
	observe := iq.Observe(in.metrics)
	return func(next iq.Handler) iq.Handler {
		observed := observe(next)
		return iq.HandlerFunc(func(ctx context.Context, req *iq.IQ) (payload *iq.Element, err error) {
			ctx, span, req := in.startServer(ctx, req)
			returned := false
			defer func() {
				if !returned {
					p := recover()
					span.SetAttributes(AttrOutcome.String(string(iq.OutcomeError)),
						attrStatusCode.String(string(iq.InternalServerError)),
						attrErrorType.String(string(iq.InternalServerError)),
						AttrCondition.String(string(iq.InternalServerError)))
					span.RecordError(panicError{p})
					span.SetStatus(codes.Error, panicError{p}.Error())
					span.End()
					if p != nil {
						panic(p)
					}
					return // runtime.Goexit: let it go on
				}
				endSpan(span, replyError(err), false)
			}()
			payload, err = observed.HandleIQ(ctx, req)
			returned = true
			return payload, err
		})
	}
}

// startServer starts req's server span, and returns the handler's context
// and the request it is to see.
func (in *Instrumentation) startServer(ctx context.Context, req *iq.IQ) (context.Context, trace.Span, *iq.IQ) {
	var links []trace.Link
	if in.wire {
		var carrier propagation.MapCarrier
		carrier, req = in.extract(req)
		if carrier != nil && !trace.SpanContextFromContext(ctx).IsValid() {
			if in.public {
				remote := trace.SpanContextFromContext(in.propagator().Extract(context.Background(), carrier))
				if remote.IsValid() {
					links = append(links, trace.Link{SpanContext: remote})
				}
			} else {
				ctx = in.propagator().Extract(ctx, carrier)
			}
		}
	}
	m := in.methodOf(req.Payload)
	attrs := make([]attribute.KeyValue, 4, 5)
	attrs[0], attrs[1] = systemXMPP, m.methodKV
	attrs[2], attrs[3] = AttrIQType.String(string(req.Type)), AttrIQID.String(req.ID)
	if req.From != "" {
		attrs = append(attrs, attrClientAddr.String(req.From))
	}
	if len(links) > 0 {
		ctx, span := in.tracer.Start(ctx, m.spanName(req.Type), serverKind, trace.WithAttributes(attrs...),
			trace.WithNewRoot(), trace.WithLinks(links...))
		return ctx, span, req
	}
	ctx, span := in.tracer.Start(ctx, m.spanName(req.Type), serverKind, trace.WithAttributes(attrs...))
	return ctx, span, req
}

// replyError is the error of the reply a handler's error causes: a
// *iq.StanzaError is sent as it is, anything else as
// internal-server-error (which the returned error wraps, with err).
func replyError(err error) error {
	if err == nil {
		return nil // before serr, which escapes to errors.As: no allocation for a result
	}
	var serr *iq.StanzaError
	if errors.As(err, &serr) && serr != nil {
		return err
	}
	return fmt.Errorf("%w: %w", iq.NewError(iq.Cancel, iq.InternalServerError, ""), err)
}
