// Package iq implements XMPP IQ (info/query) request and response, RFC 6120
// §8.2.3, over any XML stream.
//
// It has two halves, usable alone or together:
//
//   - A Caller sends get and set requests and matches the result or error
//     that answers each one by id and by sender, with a deadline on every
//     request.
//   - A Callee routes incoming get and set requests by type, namespace and
//     element name to Handlers, as net/http's ServeMux routes by path, and
//     sends exactly one reply to each.
//
// An Endpoint holds one of each and sorts incoming IQs between them. The
// library does no I/O of its own: it sends through a Sender, and the program
// feeds it what it reads with Receive. Package stream provides both for an
// XML stream over a net.Conn.
//
// Caller, Callee and Endpoint are safe for concurrent use by multiple
// goroutines. IQ, Element and StanzaError are plain values.
package iq

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Sender sends one IQ on a stream. It is the only thing this package needs
// from a stream. SendIQ must be safe for concurrent use, must not interleave
// two stanzas, and should give up when ctx is done.
//
// The ctx a Caller passes ends when the request ends unanswered: at its
// deadline (its context's, or WithTimeout's), when its context ends, or
// when the Caller closes. The ctx a Callee passes with a reply
// ends WithReplyTimeout after the reply was due, whatever became of the
// request's context. Both carry the values of the context they come from,
// and may be reused for another IQ once SendIQ has returned, so a Sender
// must not keep them (nor anything derived from them) past its return.
//
// An IQ that does not encode should fail with an error wrapping ErrEncode
// (pass AppendXML's error through with %w): a Callee then sends
// cancel/internal-server-error in place of the reply.
type Sender interface {
	SendIQ(ctx context.Context, iq *IQ) error
}

// An AsyncSender is a Sender that can queue an IQ behind a write under way
// and return without waiting for it (stream.Conn, component.Supervisor
// and component.Pool are). A Callee sends its handlers' replies so (a
// worker whose reply queues goes on to the next request at once), and
// Caller.Request its requests (it waits for the response and the write's
// verdict together).
//
// SendIQAsync either settles the IQ before it returns, written or refused,
// and returns queued false with the verdict SendIQ would have returned;
// or queues it and returns queued true, and tells n the verdict SendIQ
// would have returned, exactly once, from whichever goroutine settles it:
// by ctx's deadline at the latest, as SendIQ returns by then. n may be
// told before SendIQAsync has returned to its caller, which must not
// count on running first. i is the Sender's only until SendIQAsync
// returns, ctx until n is told. n.Sent runs on whichever goroutine
// settles the IQ (another sender's, a timer's): it must be quick, as a
// CallHook must, and must not wait for a write on the same stream, which
// may be queued behind the one it delays; it may close the stream.
// SendIQAsync never waits behind another write, but an IQ it does not
// queue is written on its caller's goroutine, which waits for that write
// (ctx bounds it), as SendIQ's does.
type AsyncSender interface {
	Sender
	SendIQAsync(ctx context.Context, i *IQ, n Notifier) (queued bool, err error)
}

// A Notifier is told the verdict of an IQ an AsyncSender queued.
type Notifier interface {
	Sent(err error)
}

// SenderFunc adapts a function to the Sender interface.
type SenderFunc func(ctx context.Context, iq *IQ) error

// SendIQ calls f(ctx, iq).
func (f SenderFunc) SendIQ(ctx context.Context, iq *IQ) error { return f(ctx, iq) }

// mustSender panics, naming fn, when s is nil or a nil SenderFunc: a
// programming error, better caught at construction than at the first send.
func mustSender(fn string, s Sender) {
	if s == nil {
		panic("iq: " + fn + ": nil Sender")
	}
	if f, ok := s.(SenderFunc); ok && f == nil {
		panic("iq: " + fn + ": nil SenderFunc")
	}
}

// mustContext panics, naming fn, when ctx is nil, on the goroutine that
// passed it rather than on one of the package's own.
func mustContext(fn string, ctx context.Context) {
	if ctx == nil {
		panic("iq: " + fn + ": nil Context")
	}
}

// Default limits.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultMaxPending  = 10000
	DefaultMaxInFlight = 256
	// DefaultReplyTimeout bounds a Callee's wait for its Sender to take a
	// reply (WithReplyTimeout).
	DefaultReplyTimeout = 10 * time.Second
)

// Option configures a Caller, a Callee or an Endpoint. Options are shared by
// the three constructors; each ignores those that do not concern it.
//
// Every option follows one rule: its zero value (0, "", nil) keeps the
// default, and a value out of its range (a negative duration or count, a
// malformed address, an unknown condition) is a programming error, so
// the option panics when called, with a message that names it.
type Option func(*config)

type config struct {
	timeout       time.Duration
	localJID      string
	maxPending    int
	maxInFlight   int
	logger        *slog.Logger
	unknownNSCond Condition
	metrics       Metrics
	replyTimeout  time.Duration
	callHook      CallHook
	treeReuse     bool
}

func newConfig(opts []Option) config {
	c := config{
		timeout:       DefaultTimeout,
		maxPending:    DefaultMaxPending,
		maxInFlight:   DefaultMaxInFlight,
		unknownNSCond: FeatureNotImplemented,
		replyTimeout:  DefaultReplyTimeout,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// WithTimeout sets how long a Caller waits for a response to a request
// whose context has no deadline (DefaultTimeout, 30 s, by default). A
// context's own deadline always wins, longer or shorter. The deadline
// bounds the send too: the context the Sender is given ends at it, so a
// request stuck writing to a peer that stopped reading fails with
// ErrTimeout all the same. Zero keeps the default; WithTimeout panics if d
// is negative.
func WithTimeout(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("iq: WithTimeout: negative duration %v", d))
	}
	return func(c *config) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithLocalJID tells a Caller its own address (the full JID bound on a
// client stream, or a component's domain). Responses from it, its bare JID
// or its domain are accepted for every request, as only the local server
// can send them; without it, responses to requests that have no to are
// accepted from any sender, as before resource binding. The Caller of an
// Endpoint can be told later with SetLocalJID. An empty jid leaves the
// address unknown; WithLocalJID panics on a malformed one (SetLocalJID,
// which returns an error, suits an address read from configuration).
func WithLocalJID(jid string) Option {
	if jid != "" {
		mustParseJID("WithLocalJID", jid)
	}
	return func(c *config) { c.localJID = jid }
}

// WithMaxPending caps a Caller's pending requests (DefaultMaxPending by
// default); past it, requests fail at once with ErrTooManyPending. Zero
// keeps the default; WithMaxPending panics if n is negative.
func WithMaxPending(n int) Option {
	if n < 0 {
		panic(fmt.Sprintf("iq: WithMaxPending: negative count %d", n))
	}
	return func(c *config) {
		if n > 0 {
			c.maxPending = n
		}
	}
}

// WithMaxInFlight caps the handlers a Callee runs at once from Receive
// (DefaultMaxInFlight by default), requests waiting their turn on an
// ordered route (OrderedBySender) included; a request past it is answered
// wait/resource-constraint at once. Zero keeps the default;
// WithMaxInFlight panics if n is negative.
func WithMaxInFlight(n int) Option {
	if n < 0 {
		panic(fmt.Sprintf("iq: WithMaxInFlight: negative count %d", n))
	}
	return func(c *config) {
		if n > 0 {
			c.maxInFlight = n
		}
	}
}

// WithReplyTimeout bounds how long a Callee waits for its Sender to send
// one reply (DefaultReplyTimeout, 10 s, by default): the context it gives
// SendIQ ends d after the reply was due, so that a peer that stopped
// reading holds no handler's goroutine, nor its slot, for longer. A reply not sent by
// then is dropped and logged ("iq: reply not sent"). The request's own
// context does not bound its reply, which is due even once that context
// has ended. Zero keeps the default; WithReplyTimeout panics if d is
// negative.
func WithReplyTimeout(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("iq: WithReplyTimeout: negative duration %v", d))
	}
	return func(c *config) {
		if d > 0 {
			c.replyTimeout = d
		}
	}
}

// WithLogger sets where dropped responses, handler failures and failed
// sends are reported. By default, and with l nil, nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// WithTreeReuse lets the element trees of the IQs a stream reads for the
// Endpoint be reused, rather than collected, once the program is done with
// them: package stream builds the tree of each big stanza (past a few
// elements) in memory that IQ.Release gives back, the Callee releases each
// request its handler answered once the reply has been handed to the
// Sender, the program may release each response it is done with
// (IQ.Release), and GetAs and SetAs release each response whose payload
// they decoded into a value of the program's (not one they return as an
// Element). For payloads of kilobytes that is the larger part of what
// reading a stanza allocates (BENCHMARKS.md, Size/iq-release: 10 KB round
// trips over net.Pipe at 217 MB/s rather than 152, medians of one run).
//
// The cost is a rule every handler on the Callee, and every middleware,
// must keep: nothing of the request's tree (its Payload, any element,
// attribute slice or content slice in it), nor the request's Payload and
// Error fields, may be used once the handler has returned, by a goroutine
// it started or through a value it stored; the reply may hold parts of
// the request, as an echo's does, and Element.Copy makes a copy to keep.
// Strings read from the tree stay valid. A handler that breaks the rule
// reads another stanza's elements, or nil, and the race detector reports
// it. (The package's Timeout middleware keeps to it: the tree of a request
// whose handler it leaves running is not reused.) Requests answered
// without a handler (no route, over WithMaxInFlight, malformed) are left
// to the collector. The Callee releases requests only when its Sender is
// an AsyncSender (stream.Conn, the component package's senders), which
// lets go of a reply once handed it; with another Sender, which may keep
// the replies it is given (iqtest.Recorder does), it releases none. The
// same rule holds for a CallHook's done function and the response it is
// given: nothing of the response's tree, nor its Payload and Error fields,
// may be used once done has returned, for GetAs and SetAs release the
// response (a big one: the rule can hold in tests of small payloads and
// break in production).
//
// An IQ read with tree reuse carries a reference to its tree's memory: to
// compare two IQs, compare their fields, or their String, rather than
// reflect.DeepEqual them.
func WithTreeReuse() Option {
	return func(c *config) { c.treeReuse = true }
}

// WithMetrics reports to m what no middleware can see: the responses a
// Caller drops because their sender may not answer the request they name
// (SpoofedResponse), and the replies a Callee's Sender fails to send
// (DroppedReply); and, when m implements CallMetrics too, every request a
// Caller makes and how it ended. Use Observe for what reaches handlers. m
// must be safe for concurrent use; nil, the default, reports nothing.
func WithMetrics(m Metrics) Option {
	return func(c *config) { c.metrics = m }
}

// WithUnknownNamespaceCondition sets the condition of the error a Callee
// sends for a get or set in a namespace no handler is registered for:
// FeatureNotImplemented by default, or ServiceUnavailable as RFC 6120 §8.4
// recommends. A request in a known namespace with an unknown element or
// type always gets FeatureNotImplemented. An empty cond keeps the default;
// WithUnknownNamespaceCondition panics if cond is not one of the defined
// conditions (Condition.Valid), which could not be sent.
func WithUnknownNamespaceCondition(cond Condition) Option {
	if cond != "" && !cond.Valid() {
		panic(fmt.Sprintf("iq: WithUnknownNamespaceCondition: %q is not a defined condition", cond))
	}
	return func(c *config) {
		if cond != "" {
			c.unknownNSCond = cond
		}
	}
}

// Endpoint is one side of an IQ conversation: a Caller for the requests it
// makes and a Callee for those it answers, on one stream. It is safe for
// concurrent use.
type Endpoint struct {
	Caller *Caller
	Callee *Callee
	log    *slog.Logger
}

// NewEndpoint returns an Endpoint whose Caller and Callee send through s,
// both configured by opts. It panics if s is nil.
func NewEndpoint(s Sender, opts ...Option) *Endpoint {
	mustSender("NewEndpoint", s)
	cfg := newConfig(opts)
	e := &Endpoint{
		Caller: newCaller(s, cfg),
		Callee: newCallee(s, cfg),
		log:    cfg.logger,
	}
	e.Caller.peer = e.Callee
	return e
}

// TreeReuse reports whether the Endpoint was made WithTreeReuse: a
// stream reader (package stream) builds the trees of the IQs it hands the
// Endpoint in memory that IQ.Release gives back.
func (e *Endpoint) TreeReuse() bool { return e.Callee.treeReuse }

// Receive hands an incoming IQ to the side it concerns: a result or an
// error to the Caller (one that matches no pending request is dropped and
// logged), a get or a set to the Callee, and anything else to the Callee
// too, which answers it bad-request. It returns without waiting for any
// handler, but for those registered with HandleInline, which it runs;
// the handler's context derives from ctx, and ends with it, as
// Callee.Receive says. It panics if ctx is nil, whatever in is.
func (e *Endpoint) Receive(ctx context.Context, in *IQ) {
	mustContext("Endpoint.Receive", ctx)
	if in == nil {
		return
	}
	if in.IsResponse() {
		if !e.Caller.Receive(in) {
			e.log.Debug("iq: dropped response that matches no pending request",
				"id", in.ID, "from", in.From, "type", in.Type)
		}
		return
	}
	e.Callee.Receive(ctx, in)
}

// Close closes the Caller, failing every pending request with ErrClosed,
// and the Callee, cancelling the contexts of running handlers. It does not
// close the stream.
func (e *Endpoint) Close() error {
	return e.CloseWithError(nil)
}

// CloseWithError is Close with a cause: pending requests fail with an error
// that wraps both ErrClosed and cause. A stream reader calls it when the
// stream ends.
func (e *Endpoint) CloseWithError(cause error) error {
	e.Caller.CloseWithError(cause)
	e.Callee.Close()
	return nil
}
