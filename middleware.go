package iq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/xmpp-iq/iq/internal/errs"
)

// Middleware wraps a Handler in another, which may look at the request,
// answer it without calling the handler, or change what it returns. It is
// what Callee.Use, HandleGet and HandleSet take. The ones this package
// provides are safe for concurrent use, as middleware must be.
type Middleware = func(Handler) Handler

// Rule tells whether the sender of a request may reach a handler (see
// Allow). It is called concurrently, and must not modify req.
//
// Any func(*IQ) bool converts to a Rule, for a predicate of one's own:
//
//	iq.Rule(func(req *iq.IQ) bool { return strings.HasSuffix(req.From, "@admin.example") })
type Rule func(req *IQ) bool

// OwnAccount allows requests from our own account, local being our
// address (a client's bound full JID or its bare JID, a component's
// domain): those with no from, our bare JID and our full JID. A request
// with no from is, on a client stream, one our own server sends on behalf
// of our account (RFC 6120 §8.1.2.1), such as a roster push (RFC 6121
// §2.1.6 allows it only with no from or our bare JID). Our account's other
// resources are not our own account in this sense; allow them with
// JIDs(bare JID).
//
// On a component or server stream every request has a from, so only our
// own address matches. With local empty (a client before resource
// binding, say), only requests with no from match. OwnAccount panics on a
// malformed local JID.
func OwnAccount(local string) Rule {
	var self JID
	if local != "" {
		self = mustParseJID("OwnAccount", local)
	}
	return func(req *IQ) bool {
		if req.From == "" {
			return true
		}
		if self.IsZero() {
			return false
		}
		f, err := ParseJID(req.From)
		return err == nil && (f == self || f == self.Bare())
	}
}

// JIDs allows requests from the given addresses, compared after RFC 7622
// normalisation. A full JID allows itself alone; a bare JID
// (user@example.com) allows itself and any of its resources; a domain
// (example.com) allows itself and its resources, not its users (for them,
// use Domains). A request with no from is not allowed. JIDs panics on a
// malformed address.
func JIDs(addrs ...string) Rule {
	exact := make(map[JID]bool)
	bare := make(map[JID]bool)
	for _, a := range addrs {
		j := mustParseJID("JIDs", a)
		if j.resource != "" {
			exact[j] = true
		} else {
			bare[j] = true
		}
	}
	return func(req *IQ) bool {
		if req.From == "" {
			return false
		}
		f, err := ParseJID(req.From)
		return err == nil && (exact[f] || bare[f.Bare()])
	}
}

// Domains allows requests from any address at the given domains (their
// users, resources and the domains themselves), compared after
// normalisation; not their subdomains. A request with no from is not
// allowed. Domains panics on an argument that is not a domain.
func Domains(domains ...string) Rule {
	set := make(map[string]bool)
	for _, d := range domains {
		j := mustParseJID("Domains", d)
		if j.local != "" || j.resource != "" {
			panic(fmt.Sprintf("iq: Domains: %q is not a domain", d))
		}
		set[j.domain] = true
	}
	return func(req *IQ) bool {
		if req.From == "" {
			return false
		}
		f, err := ParseJID(req.From)
		return err == nil && set[f.domain]
	}
}

// AnyOf allows a request that any of rules allows.
func AnyOf(rules ...Rule) Rule {
	return func(req *IQ) bool {
		for _, r := range rules {
			if r != nil && r(req) {
				return true
			}
		}
		return false
	}
}

func mustParseJID(fn, s string) JID {
	j, err := ParseJID(s)
	if err != nil {
		panic(fmt.Sprintf("iq: %s(%q): %s", fn, s, jidDetail(err)))
	}
	return j
}

// Allow returns middleware that runs the handler only for requests rule
// allows, and answers the others auth/forbidden. With Callee.Use it guards
// every handler; given to HandleGet or HandleSet, or wrapped around a
// Handler passed to Callee.Handle, only that one. It panics if rule is
// nil.
func Allow(rule Rule) Middleware {
	return deny("Allow", rule, Auth, Forbidden)
}

// AllowHidden is Allow, but answers the requests rule refuses
// cancel/service-unavailable, as RFC 6120 §8.3.3.19 suggests to hide that
// the feature exists. (A Callee answers a namespace it has no handler for
// feature-not-implemented unless configured with
// WithUnknownNamespaceCondition(ServiceUnavailable); configure both alike
// for the answers to be indistinguishable.)
func AllowHidden(rule Rule) Middleware {
	return deny("AllowHidden", rule, Cancel, ServiceUnavailable)
}

func deny(fn string, rule Rule, t ErrorType, cond Condition) Middleware {
	if rule == nil {
		panic("iq: " + fn + ": nil rule")
	}
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *IQ) (*Element, error) {
			if !rule(req) {
				return nil, NewError(t, cond, "")
			}
			return next.HandleIQ(ctx, req)
		})
	}
}

// ErrHandlerTimeout is wrapped, with a wait/remote-server-timeout
// *StanzaError, by the error Timeout returns for a handler that ran out of
// time.
var ErrHandlerTimeout = errors.New("iq: handler timed out")

// errTimeoutCause is the cause of a handler context that Timeout expired.
var errTimeoutCause = fmt.Errorf("%w (Timeout middleware)", context.DeadlineExceeded)

// Timeout returns middleware that gives each handler d to answer. The
// handler's context expires after d; if the handler has not returned by
// then, the request is answered wait/remote-server-timeout at once (the
// condition RFC 6120 §8.3.3.16 defines for a timeout beyond the
// recipient: retry later), without waiting for the handler, whose eventual
// return is discarded, as is any panic it raises after. A handler that
// returns an error once its context has expired is answered the same way;
// one that returns a result in time, even having exceeded its deadline by
// a hair, has it sent.
//
// When the context given to the handler ends for another reason first
// (the Callee closing, or a shorter deadline of the request's context),
// Timeout waits for the handler, as it would be waited for without it.
//
// The handler runs on a goroutine of its own so that the reply need not
// wait for it: a handler that ignores its context keeps running after the
// reply, uncounted by WithMaxInFlight. A panic before the deadline reaches
// the Callee as usual. The error returned on a timeout wraps
// ErrHandlerTimeout and the *StanzaError. Timeout panics if d ≤ 0.
func Timeout(d time.Duration) Middleware {
	if d <= 0 {
		panic("iq: Timeout: duration must be positive")
	}
	timedOut := func() error {
		serr := NewError(Wait, RemoteServerTimeout, "")
		return errs.New("iq: handler timed out: "+errs.Trim(serr, "iq: "), ErrHandlerTimeout, serr)
	}
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *IQ) (*Element, error) {
			hctx, cancel := context.WithTimeoutCause(ctx, d, errTimeoutCause)
			defer cancel()
			type result struct {
				payload  *Element
				err      error
				panicked bool
				p        any
			}
			done := make(chan result, 1)
			go func() {
				var r result
				returned := false
				defer func() {
					if p := recover(); p != nil {
						r = result{panicked: true, p: p}
					} else if !returned {
						r = result{err: errors.New("iq: handler exited its goroutine")}
					}
					done <- r
				}()
				r.payload, r.err = next.HandleIQ(hctx, req)
				returned = true
			}()
			var r result
			select {
			case r = <-done:
			case <-hctx.Done():
				if context.Cause(hctx) == errTimeoutCause {
					// The handler runs on: its request's tree is not to
					// be reused (WithTreeReuse) under it.
					req.keepTree()
					return nil, timedOut()
				}
				r = <-done // ctx ended first: wait, as without Timeout
			}
			if r.panicked {
				panic(r.p)
			}
			if r.err != nil && context.Cause(hctx) == errTimeoutCause {
				return nil, timedOut()
			}
			return r.payload, r.err
		})
	}
}

// outcome returns the condition of the reply a handler's return causes:
// "" for a result.
func outcome(err error) Condition {
	if err == nil {
		return ""
	}
	var serr *StanzaError
	if errors.As(err, &serr) && serr != nil {
		return serr.condition()
	}
	return InternalServerError
}

// Logging returns middleware that logs every request that reaches a
// handler, once answered, at level Info: its id, type, sender, payload
// name, how long the handler took and the reply ("result" or the error's
// condition). A panicking handler is logged, then the panic goes on to the
// Callee, which answers internal-server-error.
func Logging(l *slog.Logger) Middleware {
	if l == nil {
		panic("iq: Logging: nil logger")
	}
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *IQ) (payload *Element, err error) {
			start := time.Now()
			reply := "panic"
			defer func() {
				l.LogAttrs(ctx, slog.LevelInfo, "iq: request",
					slog.String("id", req.ID), slog.String("type", string(req.Type)),
					slog.String("from", req.From), slog.String("ns", req.Payload.Name.Space),
					slog.String("name", req.Payload.Name.Local),
					slog.Duration("duration", time.Since(start)), slog.String("reply", reply))
			}()
			payload, err = next.HandleIQ(ctx, req)
			reply = "result"
			if c := outcome(err); c != "" {
				reply = string(c)
			}
			return payload, err
		})
	}
}

// Metrics receives counts from Observe, WithMetrics and ObserveLog, each
// event once whichever of them are combined. Its methods are called
// concurrently and must be quick. space and local name a request's
// payload. A Metrics that also implements CallMetrics counts the requests
// a Caller makes too. ExpvarMetrics implements both, as does the
// OpenTelemetry one of package github.com/xmpp-iq/iq/otel.
type Metrics interface {
	// Request counts a request that reached the handler chain.
	Request(space, local string)
	// Reply counts the reply to it, cond being "" for a result and the
	// error's condition otherwise, and the time the handler took.
	Reply(space, local string, cond Condition, latency time.Duration)
	// Timeout counts a handler that ran out of time (see Timeout).
	Timeout(space, local string)
	// DroppedReply counts a reply the Sender failed to send.
	DroppedReply()
	// SpoofedResponse counts a response dropped because its sender was
	// not allowed to answer the request it named.
	SpoofedResponse()
}

// Observe returns middleware that reports to m every request that reaches
// a handler, its reply and its latency, and, when the handler timed out
// (Timeout, placed inside Observe or outside it), the timeout. A panic
// counts as an internal-server-error reply and goes on to the Callee.
// Requests answered without a handler (malformed, unroutable, over the
// in-flight cap) are not seen. For dropped replies and spoofed responses,
// which no middleware sees, use WithMetrics (or ObserveLog); giving all of
// them the same m counts each event once.
func Observe(m Metrics) Middleware {
	if m == nil {
		panic("iq: Observe: nil Metrics")
	}
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *IQ) (payload *Element, err error) {
			space, local := req.Payload.Name.Space, req.Payload.Name.Local
			m.Request(space, local)
			start := time.Since(callEpoch) // monotonic alone: half a time.Now
			cond := InternalServerError    // unless the handler returns
			defer func() {
				m.Reply(space, local, cond, time.Since(callEpoch)-start)
			}()
			payload, err = next.HandleIQ(ctx, req)
			cond = outcome(err)
			if errors.Is(err, ErrHandlerTimeout) || (err != nil && errors.Is(context.Cause(ctx), context.DeadlineExceeded)) {
				m.Timeout(space, local)
			}
			return payload, err
		})
	}
}

// Log messages of this package that ObserveLog counts.
const (
	logReplyNotSent = "iq: reply not sent"
	logSpoofed      = "iq: dropped response from a sender not allowed to answer"
)

// countedKey marks the context of a log record whose event has already
// been reported to a Metrics given to WithMetrics, so that ObserveLog does
// not count it a second time.
type countedKey struct{}

var countedCtx = context.WithValue(context.Background(), countedKey{}, true)

// countMetric reports an event to m, when there is one, by calling count,
// and returns the context to log the event with: one that tells ObserveLog
// the event is already counted.
func countMetric(m Metrics, count func(Metrics)) context.Context {
	if m == nil {
		return context.Background()
	}
	count(m)
	return countedCtx
}

// ObserveLog returns a slog.Handler that passes records on to next and
// counts, in m, the two events no middleware sees, from the Warn records
// a Caller or Callee logs for them: a reply the Callee's Sender failed to
// send (DroppedReply) and a response the Caller dropped as coming from a
// sender not allowed to answer (SpoofedResponse). It counts nothing else.
//
// WithMetrics reports the same two events directly and is the simpler
// way; ObserveLog serves a program that configures logging in one place.
// Each event is counted once whatever the combination: the records of a
// Caller or Callee configured WithMetrics are passed on but not counted by
// ObserveLog, since WithMetrics has counted them already. Give a logger
// built on it to WithLogger:
//
//	m := iq.NewExpvarMetrics()
//	ep := iq.NewEndpoint(s, iq.WithLogger(slog.New(iq.ObserveLog(m, slog.Default().Handler()))))
//	ep.Callee.Use(iq.Observe(m))
//
// Records are counted whatever level next is enabled for, and passed on
// only when next is enabled for their level; a nil next discards them. The
// handler is safe for concurrent use if next is. ObserveLog panics if m is
// nil.
func ObserveLog(m Metrics, next slog.Handler) slog.Handler {
	if m == nil {
		panic("iq: ObserveLog: nil Metrics")
	}
	if next == nil {
		next = slog.DiscardHandler
	}
	return observeLog{m, next}
}

type observeLog struct {
	m    Metrics
	next slog.Handler
}

func (h observeLog) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.next.Enabled(ctx, l)
}

func (h observeLog) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil || ctx.Value(countedKey{}) == nil {
		switch r.Message {
		case logReplyNotSent:
			h.m.DroppedReply()
		case logSpoofed:
			h.m.SpoofedResponse()
		}
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h observeLog) WithAttrs(as []slog.Attr) slog.Handler {
	return observeLog{h.m, h.next.WithAttrs(as)}
}

func (h observeLog) WithGroup(name string) slog.Handler {
	return observeLog{h.m, h.next.WithGroup(name)}
}
