package iq

import (
	"context"
	"errors"
	"reflect"
	"sync/atomic"
)

// HandleInline registers h as Handle does, but to run inline: on the
// goroutine that calls Receive, which for a stream is its read loop
// (stream.Conn.Serve), rather than on a worker goroutine. The reply is
// written from there too. It spares each request the hand-off to a
// worker and back, about a fifth of the CPU of a round trip over
// net.Pipe, and suits handlers that answer at once from memory (a ping,
// a version, a lookup in a map).
//
// It is an opt-in with a cost, which the program takes on knowingly:
//
//   - While the handler runs and its reply is written, nothing more is
//     read from the stream: a slow handler, or a peer slow to read the
//     reply, stalls every request and response on it, the Caller's
//     included. Writing the reply is bounded by WithReplyTimeout, the
//     handler by nothing but itself. (A reply that an AsyncSender, such
//     as stream.Conn, queues behind a write under way is not waited for:
//     the read loop goes on.)
//   - A handler that makes a request on the same stream and waits for its
//     response would wait for the read loop it is blocking: a deadlock.
//     Caller.Request (and Get, Set and the typed calls) called with the
//     handler's context, or a context derived from it, on the Caller of
//     the same Endpoint or on one that sends through the Callee's own
//     Sender, fails at once with an error wrapping ErrInlineCall instead.
//     Nothing can catch a request made with another context, or a
//     Caller.Go whose Done the handler then waits on: those hang until
//     their deadline, with the stream.
//   - The handler must not call runtime.Goexit (t.FailNow in a test): its
//     request is answered internal-server-error, but the goroutine that
//     ends is the read loop's.
//
// Requests on an inline route run one at a time, in the order they are
// read, so the route options (Ordered, OrderedBySender, MaxQueued) do
// not apply: HandleInline panics when given one, and otherwise as Handle
// does. Everything else is as for Handle: middleware (Use and mw), the
// WithMaxInFlight cap, Drain, InFlight, and the handler's context, which
// carries ctx's values and deadline, is cancelled when ctx is, when the
// Callee closes (with ErrClosed as its cause) and when the handler
// returns. Reply runs every handler on its caller's goroutine anyway.
func (c *Callee) HandleInline(t Type, space, local string, h Handler, mw ...Middleware) {
	c.registerRoute("HandleInline", t, space, local, h, mw, true)
}

// ErrInlineCall is wrapped by the error of a request made, and waited
// for, from an inline handler (HandleInline) on the stream whose read
// loop that handler is blocking: its response could never be read.
var ErrInlineCall = errors.New("iq: request from an inline handler would wait for the stream it blocks")

// inlineUsed is set once any Callee has an inline route: until then
// Caller.Request does not look for the mark in its context.
var inlineUsed atomic.Bool

// inlineKey finds, among a context's values, the Callee whose inline
// handler the context belongs to.
type inlineKey struct{}

// inlineCtx is the context an inline handler's derives from: the
// context given to Receive, and the mark.
type inlineCtx struct {
	context.Context
	callee *Callee
}

// Value implements context.Context.
func (m *inlineCtx) Value(key any) any {
	if _, ok := key.(inlineKey); ok {
		return m.callee
	}
	return m.Context.Value(key)
}

// handleInline runs job on the calling goroutine.
func (c *Callee) handleInline(job handlerJob) {
	job.mark = c.inlineMark(job.ctx)
	c.handle(job)
}

// inlineMark returns ctx with the mark, reusing the last one made when
// ctx is the same (a stream gives every request its Serve context).
func (c *Callee) inlineMark(ctx context.Context) *inlineCtx {
	if m := c.lastMark.Load(); m != nil && m.Context == ctx {
		return m
	}
	m := &inlineCtx{Context: ctx, callee: c}
	// Only a context that compares with == is worth keeping: the
	// comparison above then never meets an incomparable type twice.
	if reflect.TypeOf(ctx).Comparable() {
		c.lastMark.Store(m)
	}
	return m
}

// inlineBlocked reports whether a request made with ctx would wait for
// the read loop an inline handler of this Caller's stream is blocking.
func (c *Caller) inlineBlocked(ctx context.Context) bool {
	if !inlineUsed.Load() {
		return false
	}
	callee, ok := ctx.Value(inlineKey{}).(*Callee)
	if !ok {
		return false
	}
	if callee == c.peer {
		return true
	}
	return c.self != nil && isComparable(callee.sender) && callee.sender == c.self
}
