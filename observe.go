package iq

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// CallHook is called by a Caller (WithCallHook) for every request it is
// about to send, once the request has passed its checks and has its id,
// with the request's context: it is how a tracer sees the client side of
// a request without this package knowing of any tracer.
//
// It returns the IQ to send in req's place, or nil (or req) to send req
// itself. A replacement must be a copy of req that differs only in extra
// content its recipient may ignore (an attribute in a namespace of one's
// own on a copy of the payload, say): same id, type and to, one payload of
// the same name; the hook must not modify req, which is the caller's. The
// Caller panics on a replacement that breaks this, a bug of the hook. The
// replacement is what is sent and what Call.Request holds.
//
// done, when not nil, is called exactly once when the request ends, with
// what Request returns: the response (nil if none) and the error (nil for
// a result). It is called before the request's caller is told, from
// whichever goroutine ended the request, and must be quick. On a Caller
// made WithTreeReuse it must not use the response (its tree, its Payload
// and Error fields) once it has returned, for GetAs and SetAs release it
// (see WithTreeReuse). A request the Caller refuses once the hook has run
// (it is closed, too many are pending, the id is in use) ends at once,
// through done too.
//
// A CallHook is called concurrently and must be safe for that.
type CallHook func(ctx context.Context, req *IQ) (send *IQ, done func(resp *IQ, err error))

// WithCallHook has a Caller call h for every request it sends (see
// CallHook). nil, the default, calls nothing.
func WithCallHook(h CallHook) Option {
	return func(c *config) { c.callHook = h }
}

// CallMetrics is the part of a Metrics that concerns the requests a Caller
// makes. A Metrics given to WithMetrics that also implements CallMetrics
// (ExpvarMetrics does) is told of every request a Caller makes once the
// request has passed its checks: a request refused for being malformed, or
// because its context had already ended, is not counted.
type CallMetrics interface {
	// CallStart counts a request about to be sent: it is pending until
	// CallEnd. space and local name its payload.
	CallStart(space, local string)
	// CallEnd counts how the request ended, cond being the condition of
	// an error reply (outcome OutcomeError) and "" otherwise, and how long
	// it was pending.
	CallEnd(space, local string, outcome Outcome, cond Condition, latency time.Duration)
}

// Outcome names how a request a Caller made ended, for metrics and traces
// (see OutcomeOf).
type Outcome string

// The outcomes of a request.
const (
	OutcomeResult   Outcome = "result"   // answered with a result
	OutcomeError    Outcome = "error"    // answered with an error: see its condition
	OutcomeTimeout  Outcome = "timeout"  // no answer by its deadline (ErrTimeout)
	OutcomeCanceled Outcome = "canceled" // its context was cancelled
	OutcomeClosed   Outcome = "closed"   // the Caller closed (ErrClosed)
	OutcomeRefused  Outcome = "refused"  // not sent: ErrTooManyPending or ErrDuplicateID
	OutcomeInvalid  Outcome = "invalid"  // invalid request or response (ErrInvalid)
	OutcomeNotSent  Outcome = "not_sent" // the Sender failed
)

// OutcomeOf classifies the error a Caller's request ended with: nil is a
// result; a *StanzaError, an error reply, with its condition; then, in
// this order, ErrTimeout, ErrClosed, context.Canceled, ErrTooManyPending
// or ErrDuplicateID, and ErrInvalid; any other error is the Sender's.
func OutcomeOf(err error) (Outcome, Condition) {
	if err == nil {
		return OutcomeResult, ""
	}
	var serr *StanzaError
	switch {
	case errors.As(err, &serr) && serr != nil:
		return OutcomeError, serr.condition()
	case errors.Is(err, ErrTimeout):
		return OutcomeTimeout, ""
	case errors.Is(err, ErrClosed):
		return OutcomeClosed, ""
	case errors.Is(err, context.Canceled):
		return OutcomeCanceled, ""
	case errors.Is(err, ErrTooManyPending), errors.Is(err, ErrDuplicateID):
		return OutcomeRefused, ""
	case errors.Is(err, ErrInvalid):
		return OutcomeInvalid, ""
	}
	return OutcomeNotSent, ""
}

// callEpoch is what a Call's start time counts from: a monotonic int64 is
// a third of a time.Time in every Call.
var callEpoch = time.Now()

// observeStart runs the CallHook and CallMetrics, when configured, for a
// request that is about to be registered. It may replace call.Request.
func (c *Caller) observeStart(ctx context.Context, call *Call) {
	if c.hook == nil && c.callMetrics == nil {
		return
	}
	call.observed = true
	call.start = int64(time.Since(callEpoch))
	req := call.Request
	if c.callMetrics != nil {
		c.callMetrics.CallStart(req.Payload.Name.Space, req.Payload.Name.Local)
	}
	if c.hook == nil {
		return
	}
	send, done := c.hook(ctx, req)
	call.done = done
	if send == nil || send == req {
		return
	}
	if send.ID != req.ID || send.Type != req.Type || send.To != req.To ||
		send.Payload == nil || send.Payload.Name != req.Payload.Name || checkRequest(send) != nil {
		panic(fmt.Sprintf("iq: CallHook replaced request %s with one of another id, type, to or payload", req.ID))
	}
	call.Request = send
}

// observeEnd reports the end of a request observeStart saw, before its
// caller is told.
func (c *Caller) observeEnd(call *Call, resp *IQ, err error) {
	if !call.observed {
		return
	}
	call.observed = false
	if c.callMetrics != nil {
		outcome, cond := OutcomeOf(err)
		name := call.Request.Payload.Name
		latency := time.Since(callEpoch) - time.Duration(call.start)
		c.callMetrics.CallEnd(name.Space, name.Local, outcome, cond, latency)
	}
	if done := call.done; done != nil {
		call.done = nil
		done(resp, err)
	}
}
