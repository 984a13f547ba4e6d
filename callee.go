package iq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Handler answers a get or set request. It returns the payload of the
// result (nil for an empty result) or an error: a *StanzaError, wrapped or
// not, is sent as it is; any other error is sent as
// cancel/internal-server-error, without its text, and logged.
//
// The request's context is cancelled when the context given to Receive is,
// or when the Callee closes. Whatever the handler returns, even after
// that, becomes the one reply to the request.
type Handler interface {
	HandleIQ(ctx context.Context, req *IQ) (*Element, error)
}

// HandlerFunc adapts a function to the Handler interface.
type HandlerFunc func(ctx context.Context, req *IQ) (*Element, error)

// HandleIQ calls f(ctx, req).
func (f HandlerFunc) HandleIQ(ctx context.Context, req *IQ) (*Element, error) { return f(ctx, req) }

type route struct {
	t            Type
	space, local string
}

// routeEntry is a registered route's handler, and the orderer of its
// queues when it is ordered.
type routeEntry struct {
	h      Handler
	ord    *orderer
	inline bool // HandleInline's: runs on the goroutine that calls Receive
}

// Callee routes incoming get and set requests to handlers by type and the
// namespace and local name of their payload, and replies to each exactly
// once. Results and errors are never answered.
//
// Registration and routing are safe for concurrent use: handlers may be
// added, removed (Unregister) and replaced while requests are being
// served.
type Callee struct {
	sender      Sender
	async       AsyncSender // sender, when it is one: see reply
	log         *slog.Logger
	metrics     Metrics
	unknownNS   Condition
	maxInFlight int64
	replyWait   time.Duration
	replies     *replyWatch // ends the reply contexts at their deadlines
	treeReuse   bool        // WithTreeReuse

	mu       sync.RWMutex
	handlers map[route]routeEntry    // as registered, with the route's own middleware
	spaces   map[string]int          // registered handlers per namespace
	mws      []func(Handler) Handler // middleware, first outermost
	chains   map[route]routeEntry    // each handler wrapped in mws, rebuilt when either changes

	lastMark atomic.Pointer[inlineCtx] // the last inline handlers' mark (inline.go)

	inFlight atomic.Int64
	drain    drainState      // wakes Drain when inFlight reaches zero (drain.go)
	work     chan handlerJob // unbuffered: a send succeeds only when a worker is idle; a job without a request ends the worker
	idle     atomic.Int64    // workers waiting in nextJob
	handed   atomic.Int64    // jobs idle workers took since the reaper's last tick
	reaping  atomic.Bool     // reaper is armed (or its Callee closed)
	reaper   *time.Timer     // runs reap, every workerIdle while workers are idle
	base     context.Context // cancelled by Close
	cancel   context.CancelFunc

	handlerSlots // the running handlers' contexts, and the watches of their serve contexts (handlerctx.go)
}

// NewCallee returns a Callee that sends its replies through s. It heeds
// WithMaxInFlight, WithUnknownNamespaceCondition, WithReplyTimeout,
// WithTreeReuse and WithLogger. It panics if s is nil: Receive could send
// no reply.
func NewCallee(s Sender, opts ...Option) *Callee {
	mustSender("NewCallee", s)
	return newCallee(s, newConfig(opts))
}

func newCallee(s Sender, cfg config) *Callee {
	base, cancel := context.WithCancel(context.Background())
	c := &Callee{
		sender:      s,
		async:       asyncSender(s),
		treeReuse:   cfg.treeReuse,
		log:         cfg.logger,
		metrics:     cfg.metrics,
		unknownNS:   cfg.unknownNSCond,
		maxInFlight: int64(cfg.maxInFlight),
		replyWait:   cfg.replyTimeout,
		handlers:    make(map[route]routeEntry),
		chains:      make(map[route]routeEntry),
		spaces:      make(map[string]int),
		replies:     new(replyWatch),
		work:        make(chan handlerJob),
		base:        base,
		cancel:      cancel,
	}
	c.reaper = time.AfterFunc(time.Hour, c.reap)
	c.reaper.Stop()
	return c
}

// Handle registers h for requests of type t (TypeGet or TypeSet) whose
// payload is named local in namespace space. It panics if t is not get or
// set, if space or local is empty, if local is not an XML name without a
// colon (an NCName) or space not a namespace XML can carry (a route no
// request could ever match), if h is nil, or if a handler is already
// registered for the same route, as http.ServeMux does: these are
// programming errors.
//
// mw, if any, wrap this handler alone, inside the Callee's own middleware
// (Use), the first outermost, as HandleGet's do; the route options
// (OrderedBySender, Ordered, MaxQueued) go there too.
func (c *Callee) Handle(t Type, space, local string, h Handler, mw ...Middleware) {
	c.register("Handle", t, space, local, h, mw)
}

// register is Handle, with fn naming the function called in the panics
// about h and mw.
func (c *Callee) register(fn string, t Type, space, local string, h Handler, mw []Middleware) {
	c.registerRoute(fn, t, space, local, h, mw, false)
}

// registerRoute is register, with inline telling whether the route's
// handler runs on the goroutine that calls Receive (HandleInline).
func (c *Callee) registerRoute(fn string, t Type, space, local string, h Handler, mw []Middleware, inline bool) {
	if t != TypeGet && t != TypeSet {
		panic(fmt.Sprintf("iq: Handle: type %q: only get and set can be handled", t))
	}
	if space == "" || local == "" {
		panic("iq: Handle: empty namespace or element name")
	}
	if !isNCName(local) {
		panic(fmt.Sprintf("iq: Handle: element name %q is not an NCName: no request can match it", local))
	}
	if !routableNamespace(space) {
		panic(fmt.Sprintf("iq: Handle: namespace %q cannot be written in XML: no request can match it", space))
	}
	if h == nil {
		panic("iq: " + fn + ": nil handler")
	}
	if f, ok := h.(HandlerFunc); ok && f == nil {
		panic("iq: " + fn + ": nil handler")
	}
	h, ord := routeHandler(fn, h, mw)
	if inline && ord != nil {
		panic("iq: " + fn + ": an inline route runs its requests one at a time in the order read; Ordered, OrderedBySender and MaxQueued do not apply")
	}
	r := route{t, space, local}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.handlers[r]; dup {
		panic(fmt.Sprintf("iq: Handle: a handler is already registered for %s {%s}%s", t, space, local))
	}
	if inline {
		inlineUsed.Store(true)
	}
	c.handlers[r] = routeEntry{h, ord, inline}
	c.chains[r] = routeEntry{c.wrap(h), ord, inline}
	c.spaces[space]++
}

// Unregister removes the handler of type t (TypeGet or TypeSet) for
// payloads named local in namespace space, and reports whether there was
// one. Once it returns, requests for the route are answered as if it had
// never been registered (feature-not-implemented, or the
// WithUnknownNamespaceCondition once no handler is left in the namespace,
// which also leaves Namespaces, and with it package disco's features).
//
// Requests routed before, running or waiting in the route's ordered
// queues, finish with the handler they were routed to. Replacing a
// handler is Unregister, then Handle: a request routed in between is
// answered as for a route without handler. An ordered route's order
// starts anew with the new handler: its first requests may run beside
// the old handler's last.
func (c *Callee) Unregister(t Type, space, local string) bool {
	r := route{t, space, local}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.handlers[r]; !ok {
		return false
	}
	delete(c.handlers, r)
	delete(c.chains, r)
	if c.spaces[space]--; c.spaces[space] == 0 {
		delete(c.spaces, space)
	}
	return true
}

// routableNamespace reports whether a payload can be in namespace space:
// valid UTF-8 of XML characters only, and not the namespace reserved for
// xmlns attributes, which no element may be in.
func routableNamespace(space string) bool {
	if !utf8.ValidString(space) || space == "http://www.w3.org/2000/xmlns/" {
		return false
	}
	for _, r := range space {
		if !isXMLChar(r) {
			return false
		}
	}
	return true
}

// wrap returns h inside the middleware, the first outermost; c.mu is held.
// Chains are built when handlers or middleware change, not per request.
func (c *Callee) wrap(h Handler) Handler {
	for i := len(c.mws) - 1; i >= 0; i-- {
		h = c.mws[i](h)
	}
	return h
}

// Use adds middleware around every handler, in order: the first added is
// the outermost, the first to see a request. Every handler, registered
// before or after, is wrapped in all of it (each chain is built once, when
// a handler or middleware is added, not per request), and Use is safe for
// concurrent use like registration, while requests are served: it
// concerns requests routed after it returns.
//
// Middleware sees only requests that reach a handler: a malformed or
// unroutable request is answered without it. A middleware may answer
// without calling the handler it wraps. Use panics if a middleware is nil.
func (c *Callee) Use(mw ...func(Handler) Handler) {
	for _, m := range mw {
		if m == nil {
			panic("iq: Use: nil middleware")
		}
		if isRouteOption(m) {
			panic("iq: Use: a route option (Ordered, OrderedBySender, MaxQueued) is given to Handle, HandleGet or HandleSet")
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mws = append(c.mws, mw...)
	for r, e := range c.handlers {
		c.chains[r] = routeEntry{c.wrap(e.h), e.ord, e.inline}
	}
}

// Get registers h for get requests with a payload named local in space,
// with mw as Handle's.
func (c *Callee) Get(space, local string, h HandlerFunc, mw ...Middleware) {
	c.register("Get", TypeGet, space, local, h, mw)
}

// Set registers h for set requests with a payload named local in space,
// with mw as Handle's.
func (c *Callee) Set(space, local string, h HandlerFunc, mw ...Middleware) {
	c.register("Set", TypeSet, space, local, h, mw)
}

// Namespaces returns the namespaces that have at least one handler, in no
// particular order.
func (c *Callee) Namespaces() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]string, 0, len(c.spaces))
	for s := range c.spaces {
		out = append(out, s)
	}
	return out
}

// Handler returns the handler Reply would run for req, or, when it would
// run none, the *StanzaError it would send instead. For a result or an
// error, to which no reply is due, it returns nil, nil.
func (c *Callee) Handler(req *IQ) (Handler, *StanzaError) {
	reply, e, _ := c.check(req)
	if reply != nil {
		return nil, reply.Error
	}
	return e.h, nil
}

// lookup finds the handler for a well-formed get or set.
func (c *Callee) lookup(req *IQ) (routeEntry, *StanzaError) {
	name := req.Payload.Name
	c.mu.RLock()
	e := c.chains[route{req.Type, name.Space, name.Local}]
	known := c.spaces[name.Space] > 0
	c.mu.RUnlock()
	if e.h != nil {
		return e, nil
	}
	if known {
		return e, NewError(Cancel, FeatureNotImplemented, "")
	}
	return e, NewError(Cancel, c.unknownNS, "")
}

// check returns the reply due without running a handler, or, when a
// handler is to run, nil and that handler. done reports that no reply at
// all is due.
func (c *Callee) check(req *IQ) (reply *IQ, e routeEntry, done bool) {
	switch req.Type {
	case TypeResult, TypeError:
		return nil, e, true
	case TypeGet, TypeSet:
		if req.ID == "" || req.NumChildren() != 1 {
			return req.ErrorReply(NewError(Modify, BadRequest, "")), e, false
		}
	default:
		return req.ErrorReply(NewError(Modify, BadRequest, "")), e, false
	}
	e, serr := c.lookup(req)
	if serr != nil {
		return req.ErrorReply(serr), e, false
	}
	return nil, e, false
}

// Reply routes req and runs its handler on the calling goroutine, and
// returns the reply to send: a result, or an error for a request that is
// malformed (bad-request), unroutable (feature-not-implemented, or the
// WithUnknownNamespaceCondition), or that the handler failed. It returns
// nil when no reply is due: for a result or an error. Reply does not count
// against WithMaxInFlight, Close does not concern it (its handler's
// context is ctx alone), and an ordered route's queues do not either: the
// handler runs at once.
func (c *Callee) Reply(ctx context.Context, req *IQ) *IQ {
	mustContext("Callee.Reply", ctx)
	if req == nil {
		return nil
	}
	reply, e, done := c.check(req)
	if done || reply != nil {
		return reply
	}
	reply, _ = c.run(ctx, e.h, req, false)
	return reply
}

// run calls h and turns what it returns, or its panic, into the reply. A
// result comes from resultPool when pool is set (pooled), for reply to
// put back once the Sender is done with it.
func (c *Callee) run(ctx context.Context, h Handler, req *IQ, pool bool) (reply *IQ, pooled bool) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("iq: handler panicked", "id", req.ID, "from", req.From,
				"panic", p, "stack", string(debug.Stack()))
			reply = req.ErrorReply(NewError(Cancel, InternalServerError, ""))
		}
	}()
	payload, err := h.HandleIQ(ctx, req)
	if err == nil {
		if pool {
			r := resultPool.Get().(*IQ)
			req.fillResult(r, payload)
			return r, true
		}
		return req.Result(payload), false
	}
	var serr *StanzaError
	if errors.As(err, &serr) && serr != nil {
		return req.ErrorReply(serr), false
	}
	c.log.Error("iq: handler failed", "id", req.ID, "from", req.From, "err", err)
	return req.ErrorReply(NewError(Cancel, InternalServerError, "")), false
}

// resultPool holds the results of handlers whose replies go through an
// AsyncSender, which lets go of an IQ when SendIQAsync returns: a round
// trip then allocates no reply. (A plain Sender may keep the IQ it is
// given, as iqtest.Recorder does: its results are not pooled.)
var resultPool = sync.Pool{New: func() any { return new(IQ) }}

// Receive takes an incoming IQ and returns at once (HandleInline's routes
// aside). A get or set that has a handler runs it on a goroutine other
// than the caller's (one that has just finished another request and is
// idle, else a new one), with a context derived from ctx (cancelled
// when ctx ends, with its cause, when the Callee closes, or when the
// handler returns), and sends the reply through the Sender; with
// WithMaxInFlight handlers already running, the request is answered
// wait/resource-constraint instead. A request that gets
// an error without a handler (malformed, unroutable, over the cap) is
// answered from the calling goroutine, so that a flood of them costs no
// goroutines. Results and errors are ignored.
//
// A route registered with HandleInline is the exception, by the program's
// choice: its handler runs, and its reply is sent, on the calling
// goroutine, and Receive returns only then.
//
// On a route registered with OrderedBySender or Ordered, a request whose
// queue is busy waits its turn instead, holding its WithMaxInFlight slot,
// and is answered wait/resource-constraint when the queue is full
// (MaxQueued).
//
// A reply that cannot be encoded is replaced by cancel/internal-server-error
// and logged, when the Sender's error wraps ErrEncode (stream.Conn's and
// iqtest's do; a Sender of one's own should pass AppendXML's error through
// with %w). Reply leaves that to its caller.
//
// Receive panics if ctx is nil, on the calling goroutine: a handler's
// context is derived from it. A ctx that can end and has no deadline (a
// stream's serve context, say) is watched once for all the handlers
// started from it, rather than made the parent of each handler's
// context: its handlers' contexts then end a moment after it does, from
// a goroutine the end of ctx starts, rather than during its cancel
// function. A ctx with a deadline is the parent of each, as usual.
func (c *Callee) Receive(ctx context.Context, req *IQ) {
	mustContext("Callee.Receive", ctx)
	if req == nil {
		return
	}
	reply, e, done := c.check(req)
	if done {
		return
	}
	if reply == nil && c.base.Err() != nil {
		reply = req.ErrorReply(NewError(Cancel, ServiceUnavailable, ""))
	}
	if reply == nil && !c.acquire() {
		reply = req.ErrorReply(NewError(Wait, ResourceConstraint, ""))
	}
	if reply != nil {
		c.send(ctx, reply)
		return
	}
	job := handlerJob{ctx: ctx, h: e.h, req: req}
	if e.inline {
		c.handleInline(job)
		return
	}
	if e.ord != nil {
		switch e.ord.enqueue(&job) {
		case queued:
			return
		case full:
			c.release()
			c.send(ctx, req.ErrorReply(NewError(Wait, ResourceConstraint, "")))
			return
		}
	}
	select {
	case c.work <- job: // an idle worker takes it
	default:
		go c.worker(job)
	}
}

// handlerJob is a request for a worker to run its handler and reply.
type handlerJob struct {
	ctx context.Context
	h   Handler
	req *IQ
	q   *orderQueue // the ordered queue to run after req, if any
	// mark is the context the handler's derives from when it runs
	// inline: ctx, carrying the mark that Caller.Request looks for.
	mark *inlineCtx
}

// hctxParent returns the context the handler's context derives from.
func (j *handlerJob) hctxParent() context.Context {
	if j.mark != nil {
		return j.mark
	}
	return j.ctx
}

// workerIdle is the period of the Callee's reaper: at each tick, the idle
// workers beyond the number of requests handed to idle workers since the
// last tick end, so that a worker no request needed for a whole period
// ends within two. Reusing workers spares each request a fresh goroutine's
// stack growth (about a tenth of a round trip's CPU); their number never
// exceeds WithMaxInFlight, as each runs one request at a time. One timer
// for the Callee, rather than one per worker in its wait, spares each
// request a timer's insertion and removal (about 6 % of a round trip's
// time at 64 in flight over net.Pipe; see BENCHMARKS.md).
const workerIdle = 20 * time.Millisecond

// worker runs job, then the requests handed to it while it is idle, until
// the reaper ends it or the Callee closes.
func (c *Callee) worker(job handlerJob) {
	for {
		c.handle(job)
		if job.q != nil {
			c.runQueue(job.q)
		}
		if !c.nextJob(&job) {
			return
		}
	}
}

// nextJob waits for the next job for an idle worker, and reports false
// when the reaper ends the worker or the Callee closed.
//
// The wait is a receive on one channel, work, where a select that also
// watched for the reaper and for Close would lock, and queue on, three
// channels each time a worker goes idle and each time it is woken: about
// 5 % of a round trip one request at a time over net.Pipe (BENCHMARKS.md).
// The reaper and Close end idle workers by sending them a job without a
// request instead (quitJob). A worker counts itself idle before it looks
// at base, and Close cancels base before it counts the idle: so either
// the worker sees the Callee closed, or Close sees the worker idle and
// sends it a quitJob.
func (c *Callee) nextJob(job *handlerJob) bool {
	c.idle.Add(1)
	if c.base.Err() != nil {
		c.idle.Add(-1)
		return false
	}
	if !c.reaping.Load() && c.reaping.CompareAndSwap(false, true) {
		c.reaper.Reset(workerIdle)
	}
	*job = <-c.work
	c.idle.Add(-1)
	if job.req == nil {
		return false // quitJob
	}
	c.handed.Add(1)
	return true
}

// quitJob is the job that ends the idle worker taking it.
var quitJob handlerJob

// endIdleWorkers ends every worker waiting in nextJob, once base is
// cancelled. A worker that counted itself idle but has yet to reach its
// receive is waited for: it is on its way, and holds nothing.
func (c *Callee) endIdleWorkers() {
	for c.idle.Load() > 0 {
		select {
		case c.work <- quitJob:
		default:
			runtime.Gosched()
		}
	}
}

// reap ends the idle workers that the last period did not need, stops the
// watches of serve contexts that no handler used for a period
// (reapWatches), and runs again a period later while any worker is idle
// or any watch is left.
func (c *Callee) reap() {
	surplus := c.idle.Load() - c.handed.Swap(0)
	for ; surplus > 0; surplus-- {
		select {
		case c.work <- quitJob:
		default: // none waits (any more)
			surplus = 0
		}
	}
	if c.base.Err() != nil {
		return // workers end on base; reaping stays on, so never re-armed
	}
	c.reaping.Store(false)
	// A worker that went idle after the Load above and saw reaping still
	// set did not arm the timer: its idle count is visible now. A watch
	// started from now on arms it itself.
	watches := c.reapWatches()
	if (c.idle.Load() > 0 || watches) && c.reaping.CompareAndSwap(false, true) {
		c.reaper.Reset(workerIdle)
	}
}

// handle runs one request's handler and sends its reply, exactly once,
// even if the handler calls runtime.Goexit (which also ends the worker),
// and gives back the request's slot once the reply is written or refused.
func (c *Callee) handle(job handlerJob) {
	ctx, req := job.ctx, job.req
	hctx, cancel, id := c.handlerContext(job.hctxParent())
	returned := false
	defer func() {
		if !returned { // the handler called runtime.Goexit (t.FailNow, say)
			c.stopHandler(cancel, id)
			c.log.Error("iq: handler exited its goroutine", "id", req.ID, "from", req.From)
			c.sendThenRelease(ctx, req.ErrorReply(NewError(Cancel, InternalServerError, "")))
			c.releaseRequest(req)
			if job.q != nil {
				// This goroutine ends: the rest of the queue runs on another.
				go c.runQueue(job.q)
			}
		}
	}()
	r, pooled := c.run(hctx, job.h, req, c.async != nil)
	returned = true
	c.stopHandler(cancel, id)
	c.reply(ctx, r, true, pooled)
	c.releaseRequest(req)
}

// releaseRequest releases req, whose reply has been handed to the Sender,
// with WithTreeReuse and an AsyncSender, which has let go of the reply
// (that may hold parts of req) by then. Only a request that still owns a
// tree to give back is touched: one whose handler Timeout left running
// (keepTree) is not, nor is a small one, whose Payload such a handler may
// still read.
func (c *Callee) releaseRequest(req *IQ) {
	if c.treeReuse && c.async != nil && req.ownsTree() {
		req.Release()
	}
}

// sendThenRelease sends a handler's reply as send does, and gives back
// the handler's WithMaxInFlight slot once the reply is written or
// refused: so Drain, which waits for the slots, never returns before a
// reply it waits for has gone out.
func (c *Callee) sendThenRelease(ctx context.Context, reply *IQ) { c.reply(ctx, reply, true, false) }

// send sends a reply. The context's cancellation is not passed on: a reply
// is due even when the request's context ended. The Sender's context ends
// after the reply timeout instead (WithReplyTimeout), so that a peer that
// stopped reading holds the goroutine (or, for a reply an AsyncSender
// queued, the handler's slot) for no longer.
//
// A reply that cannot be encoded (the Sender's error wraps ErrEncode: a
// handler's payload, or its StanzaError's App, with a name XML cannot
// carry) is replaced by cancel/internal-server-error, which always can be,
// so that the requester still gets its one reply rather than its timeout.
func (c *Callee) send(ctx context.Context, reply *IQ) { c.reply(ctx, reply, false, false) }

// reply is send, and with slot set sendThenRelease. A handler's reply
// goes to an AsyncSender's queue when a write is under way, so that its
// worker goes on to the next request at once (a wait and a wake saved
// per request under load): its verdict then comes to the reply context
// (replyCtx.Sent), which logs a reply not written and gives back the
// slot. Replies without a handler (refusals, sent from Receive on the
// read loop) wait for their write, so that a flood of requests refused
// slows the reading of more as their replies are written. A pooled reply
// (see run) goes back to its pool once SendIQAsync has returned.
func (c *Callee) reply(ctx context.Context, reply *IQ, slot, pooled bool) {
	rctx := newReplyCtx(ctx, c.replyWait, c.replies)
	id, to, from := reply.ID, reply.To, reply.From
	var err error
	if c.async != nil && slot {
		rctx.callee, rctx.id, rctx.to = c, id, to
		var queued bool
		queued, err = c.async.SendIQAsync(rctx, reply, rctx)
		if pooled {
			*reply = IQ{}
			resultPool.Put(reply)
		}
		if queued {
			return
		}
		rctx.callee, rctx.id, rctx.to = nil, "", ""
	} else {
		err = c.sender.SendIQ(rctx, reply)
	}
	if err != nil && errors.Is(err, ErrEncode) {
		c.log.Error("iq: reply cannot be encoded, sending internal-server-error instead",
			"id", id, "to", to, "err", err)
		err = c.sender.SendIQ(rctx, &IQ{ID: id, To: to, From: from, Type: TypeError,
			Error: NewError(Cancel, InternalServerError, "")})
	}
	rctx.release()
	if err != nil {
		c.logReplyNotSent(id, to, err)
	}
	if slot {
		c.release()
	}
}

// logReplyNotSent logs, and counts, a reply the Sender did not write.
func (c *Callee) logReplyNotSent(id, to string, err error) {
	c.log.WarnContext(countMetric(c.metrics, Metrics.DroppedReply), logReplyNotSent, "id", id, "to", to, "err", err)
}

// InFlight reports how many handlers started by Receive are running, and
// requests waiting their turn in an ordered route's queue. It never
// exceeds WithMaxInFlight.
func (c *Callee) InFlight() int { return int(c.inFlight.Load()) }

// acquire takes one of the WithMaxInFlight slots, or reports that none is
// free. It only ever adds to a count below the cap, so that the count
// never passes the cap, not even for the moment an add-then-check would
// take to undo itself.
func (c *Callee) acquire() bool {
	for {
		n := c.inFlight.Load()
		if n >= c.maxInFlight {
			return false
		}
		if c.inFlight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Close cancels the context of every running handler. Requests received
// after are answered cancel/service-unavailable, and so are those waiting
// their turn in an ordered route's queue (from another goroutine, so that
// Close does not wait for the Sender). Close does not wait for handlers
// to return; their replies are still sent if the Sender takes them. It is
// idempotent and returns nil.
func (c *Callee) Close() error {
	c.hmu.Lock()
	c.closed = true
	c.cancelRunningLocked()
	c.hmu.Unlock()
	c.cancel()
	c.reaping.Store(true) // never armed again
	c.reaper.Stop()
	c.endIdleWorkers()
	// Requests already taken from a queue, or queued on a route
	// unregistered since, are refused by runQueue, which sees base done.
	var waiting []handlerJob
	c.mu.RLock()
	for _, e := range c.chains {
		if e.ord != nil {
			waiting = append(waiting, e.ord.flush()...)
		}
	}
	c.mu.RUnlock()
	if len(waiting) > 0 {
		go func() {
			for _, job := range waiting {
				c.refuseClosed(job)
			}
		}()
	}
	return nil
}
