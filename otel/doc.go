// Package iqotel instruments package iq with OpenTelemetry: a client span
// for every request a Caller makes, a server span for every request a
// handler serves, and metrics for both sides, in a module of its own so
// that the core needs no dependency.
//
// One Instrumentation serves an Endpoint, or any number of them:
//
//	inst := iqotel.New(iqotel.WithTracerProvider(tp), iqotel.WithMeterProvider(mp))
//	ep := iq.NewEndpoint(conn, inst.Options()...) // client spans and metrics, spoofed responses, dropped replies
//	ep.Callee.Use(inst.Middleware())              // server spans and metrics
//
// Without WithTracerProvider, WithMeterProvider or WithPropagators, the
// global ones are used (otel.GetTracerProvider, otel.GetMeterProvider,
// otel.GetTextMapPropagator).
//
// # Spans
//
// Both sides name a span after the request's type and payload, the payload
// in Clark notation as ExpvarMetrics names it: "get {urn:xmpp:ping}ping",
// "set {jabber:iq:roster}query". The type is part of the name, as an HTTP
// method is of an HTTP span's, because a get and a set of one payload are
// different operations (a roster get reads, a roster set writes) and a
// Callee routes them apart.
//
// The attributes follow OpenTelemetry's RPC semantic conventions (the
// release candidate that names rpc.system.name) where they fit:
//
//   - rpc.system.name is "xmpp".
//   - rpc.method is the payload in Clark notation, "{urn:xmpp:ping}ping":
//     the namespace plays the part of an RPC service and the element the
//     part of its method. The conventions' span name is rpc.method alone;
//     ours adds the type (above).
//   - rpc.response.status_code is "result" for a result, the stanza error's
//     condition for an error reply ("item-not-found"), and absent when no
//     response came (a timeout, a closed stream).
//   - error.type is set when the request failed: the condition of an error
//     reply, or, when no response came, the iq.Outcome ("timeout",
//     "closed", "canceled", "not_sent", "refused", "invalid").
//   - server.address, on a client span, is the to of the request, the
//     JID of the entity asked, absent for a request to one's own server
//     (no to); client.address, on a server span, is the from of the
//     request. The conventions mean a host name or a network address for
//     both; an XMPP request is addressed to a JID whatever the servers it
//     crosses, and the JID is what identifies the peer, so it is what they
//     hold. No network.* or port attribute is set: the stream's socket
//     leads to the local server, not to the peer.
//
// Where the conventions say nothing of XMPP, attributes of this package's
// own are added: xmpp.iq.type ("get" or "set"), xmpp.iq.id, xmpp.iq.outcome
// (an iq.Outcome) and, for an error reply, xmpp.stanza_error.condition and
// xmpp.stanza_error.type.
//
// A client span's status is Error whenever the request did not end with a
// result. A server span's is Error only when the fault is the server's:
// the conditions internal-server-error, undefined-condition,
// remote-server-timeout and resource-constraint; an error that blames the
// request (bad-request, forbidden, item-not-found…) leaves it unset, with
// error.type still set, as the conventions do for an HTTP server's 4xx.
// A panicking handler ends its span with the panic recorded, then panics
// on.
//
// # Metrics
//
// Metrics come through the core's one Metrics interface (iq.Metrics, and
// iq.CallMetrics for the client side), which ExpvarMetrics implements too:
// Metrics returns the implementation that records to OpenTelemetry.
//
//   - rpc.client.call.duration and rpc.server.call.duration (histograms,
//     in seconds, as the conventions name them), with rpc.system.name,
//     rpc.method, xmpp.iq.outcome and, for an error reply,
//     xmpp.stanza_error.condition; error.type when the request failed.
//   - xmpp.iq.client.requests and xmpp.iq.server.requests (counters) with
//     the same attributes: requests by outcome and condition.
//   - xmpp.iq.client.pending: the requests a Caller is waiting on.
//   - xmpp.iq.server.in_flight: the requests being handled.
//   - xmpp.iq.server.timeouts: handlers that ran out of time (iq.Timeout).
//   - xmpp.iq.client.spoofed_responses: responses dropped because their
//     sender may not answer the request they name.
//   - xmpp.iq.server.dropped_replies: replies the Sender failed to send.
//
// The server side sees only the requests that reach a handler, as
// iq.Observe does; a request answered without one (malformed, unroutable,
// over the in-flight cap) is neither traced nor counted there.
//
// # Cost
//
// The attributes of the measurements and the spans' names and method are
// made once per method (payload name) and outcome, and kept for the
// Instrumentation's life: the first 1024 methods, and 64 outcomes of
// each, which covers what a program's own handlers and requests name;
// past those, they are made for each request. A span not recorded (no SDK
// configured, or not sampled) ends without its closing attributes being
// made. What is left per request is mostly OpenTelemetry's own: with the
// global providers of a program that configures none, about one to one
// and a half microseconds and six or seven allocations per request on
// each side, on the project's machine; see
// BenchmarkCallerInstrumented and BenchmarkCalleeInstrumented
// (go test -run '^$' -bench Instrumented -benchmem) and BENCHMARKS.md.
//
// # Context propagation on the wire
//
// Off by default. With WithWirePropagation, a Caller's requests carry the
// client span's context, and the middleware makes the server span a child
// of the context an incoming request carries, so that a call from one iq
// service to another is one trace.
//
// The context travels as attributes in the namespace NSTrace on the
// request's payload, one per field of the propagator (W3C Trace Context's
// traceparent and tracestate by default):
//
//	<iq type='get' id='a1' to='b.example'>
//	  <ping xmlns='urn:xmpp:ping' xmlns:t='urn:xmpp-iq:trace:0'
//	        t:traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'/>
//	</iq>
//
// Not as a second child of the <iq/>: a get or a set carries exactly one
// child element (RFC 6120 §8.2.3), and a recipient answers one with two
// bad-request (iq.Callee does). Not as an attribute of the <iq/> either:
// iq.IQ itself keeps only the attributes RFC 6120 defines, and so may a
// server that rebuilds the stanzas it routes from structures of its own
// (ejabberd writes an <iq/>'s attributes in a fixed order of its own);
// the payload is the content a server routes without looking into it. An attribute in a namespace of its own is extended content
// that RFC 6120 §8.4 lets any element carry and lets any recipient that
// does not know it ignore; it changes neither the payload's name nor its
// namespace, so routing is unaffected.
//
// The risk: a recipient that validates payloads strictly against a schema
// with no room for foreign attributes may refuse the request (bad-request)
// where it would have answered it; a handler that echoes its payload, or
// signs or hashes it, sees the attributes too. Turn propagation on only
// towards services known to ignore them, such as other iq services: the
// middleware, when WithWirePropagation is on, takes the attributes off the
// payload (in a copy) before the handler sees it, so handlers behave alike
// whether the requester traced or not. When it is off, they are left where
// they are, and no remote context is trusted.
//
// A remote context comes from the network: WithPublicEndpoint starts a new
// trace for each incoming request, linked to the remote context rather than
// its child, for a service whose requesters are not trusted to choose its
// traces (as a public HTTP server's instrumentation does).
package iqotel
