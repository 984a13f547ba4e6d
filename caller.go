package iq

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/xmpp-iq/iq/internal/errs"
)

// Caller sends get and set requests and matches their responses.
//
// Each request is pending, under its id, from just before it is sent until
// its response arrives, its deadline passes, its context is cancelled or the
// Caller closes; whichever comes first ends it, exactly once. A response
// ends a request only if it is a result or an error, carries the request's
// id, and comes from a sender allowed to answer it (see Receive).
//
// A Caller is safe for concurrent use by multiple goroutines.
type Caller struct {
	sender     Sender
	async      AsyncSender // sender, when it is one: see run
	self       Sender      // sender when comparable: the stream a request goes out on unless SendVia says otherwise
	timeout    time.Duration
	maxPending int
	log        *slog.Logger
	metrics    Metrics
	// callMetrics is metrics when it implements CallMetrics; hook is
	// WithCallHook's (observe.go).
	callMetrics CallMetrics
	hook        CallHook
	// peer is the Callee of the same Endpoint, whose inline handlers
	// block the stream this Caller's responses arrive on (inline.go).
	peer *Callee

	mu sync.Mutex
	// The pending requests, by id: under a hash of their id in pending
	// (16 bytes a slot where a string key takes 24), and, in clash, by id,
	// the rare one whose hash another pending request's id already holds.
	// Lookups compare the id itself: a hash never stands for an id.
	pending map[uint64]*Call
	clash   map[string]*Call
	hash    func(id string) uint64 // maphash with the Caller's own seed
	closed  error                  // non-nil once closed: the error requests fail with
	local   JID                    // our own address, once known

	// Deadlines: a min-heap of pending calls by deadline and one timer
	// for the earliest, rather than a timer per request.
	deadlines []*Call
	timer     *time.Timer
	timerAt   int64 // since callEpoch, when timerSet
	timerSet  bool

	// Recycled Calls for Request. Each Caller has its own pool: a Call's
	// pending and gen are guarded by the mutex of the Caller it ran on,
	// and a late reader of them (a Receive that looked it up, a context
	// callback that has already started) must find it reused, if at all,
	// only under that same mutex.
	calls sync.Pool
}

// NewCaller returns a Caller that sends through s. It heeds WithTimeout,
// WithLocalJID, WithMaxPending, WithLogger, WithMetrics and WithCallHook. It panics if s is nil: a
// Caller cannot send anything without one.
func NewCaller(s Sender, opts ...Option) *Caller {
	mustSender("NewCaller", s)
	return newCaller(s, newConfig(opts))
}

func newCaller(s Sender, cfg config) *Caller {
	c := &Caller{
		sender:     s,
		async:      asyncSender(s),
		timeout:    cfg.timeout,
		maxPending: min(cfg.maxPending, maxHeap),
		log:        cfg.logger,
		metrics:    cfg.metrics,
		hook:       cfg.callHook,
		pending:    make(map[uint64]*Call),
	}
	seed := maphash.MakeSeed()
	c.hash = func(id string) uint64 { return maphash.String(seed, id) }
	c.calls.New = newPooledCall
	c.callMetrics, _ = cfg.metrics.(CallMetrics)
	if isComparable(s) {
		c.self = s
	}
	if cfg.localJID != "" {
		if err := c.SetLocalJID(cfg.localJID); err != nil {
			// Going on without it would let any sender answer the
			// requests that have no to.
			panic(fmt.Sprintf("iq: WithLocalJID(%q): %s", cfg.localJID, jidDetail(err)))
		}
	}
	return c
}

// SetLocalJID tells the Caller its own address, as WithLocalJID does; a
// client learns it only once it has bound a resource. It affects responses
// received after it returns.
func (c *Caller) SetLocalJID(addr string) error {
	j, err := ParseJID(addr)
	if err != nil {
		return errs.New(fmt.Sprintf("iq: local JID %q: %s", addr, jidDetail(err)), err)
	}
	c.mu.Lock()
	c.local = j
	c.mu.Unlock()
	return nil
}

// Call is a request in flight, as Go starts it. Its exported fields are
// set before it is sent on Done and must not be read before then.
type Call struct {
	// Request is what was sent, with its id filled in when it had none
	// (and as a CallHook replaced it, if one did).
	Request *IQ
	// Response is the result or error that answered the request, or nil.
	Response *IQ
	// Err is nil for a result; a *StanzaError for an error reply; else why
	// the request failed: ErrTimeout, ErrClosed, the context's error, the
	// Sender's, or one wrapping ErrInvalid.
	Err error
	// Done receives the Call once, when it ends.
	Done chan *Call

	// The fields below are laid out so that a Call Go makes for a request
	// without an id, with the copy and its id's bytes (goCall), fits in
	// 320 bytes: a million pending requests are a million of them.
	via      Sender // guarded by the Caller's mu: the stream it went out on (SendVia)
	deadline int64  // since callEpoch, monotonic
	gen      uint64 // bumped each time the Call ends, so a stale lookup cannot end a reuse
	stopCtx  func() bool
	start    int64                     // since callEpoch, when observed
	done     func(resp *IQ, err error) // the CallHook's, when observed
	sctx     sendCtx
	index    int32 // in the Caller's deadline heap; -1 when not in it
	pending  bool  // guarded by the Caller's mu: in pending and the heap
	kind     callKind
	linked   bool // guarded by sctx.mu: sctx watches the request's context
	observed bool // seen by observeStart, not yet by observeEnd
}

// callKind is how a Call was made, and so where a request without an id
// gets its copy.
type callKind uint8

const (
	goPlain  callKind = iota // by Go, for a request with an id
	goCopy                   // by Go, inside a goCall
	recycled                 // by Request's pool, reused after it returns
)

// goCall is a Call Go makes for a request that has no id, with the copy
// of the request that gets one, and that id's bytes, in one allocation.
type goCall struct {
	call Call
	iq   IQ
	id   [idLen]byte
}

// maxHeap bounds the deadline heap's index, an int32: WithMaxPending
// beyond it is taken as this.
const maxHeap = 1<<31 - 1

func newPooledCall() any {
	return &Call{Done: make(chan *Call, 1), kind: recycled, index: -1}
}

// Request sends req, which must be a get or a set with exactly one payload
// element, and waits for its response. An empty id is replaced, in a copy,
// by a fresh random one (NewID); a chosen id is kept, and refused with
// ErrDuplicateID while another request with it is pending.
//
// The wait ends at ctx's deadline if it has one, else after the Caller's
// timeout (WithTimeout), with an error that matches both ErrTimeout and
// context.DeadlineExceeded. For a result it returns the result and nil;
// for an error reply, the error IQ and its *StanzaError. A request its
// Sender could not send fails with the Sender's error; when the Sender is
// an AsyncSender that queued it, Request waits for the response and for
// that verdict together, not for the write first.
func (c *Caller) Request(ctx context.Context, req *IQ) (*IQ, error) {
	mustContext("Caller.Request", ctx)
	call := c.calls.Get().(*Call)
	call.Request = req
	resp, err, keep := c.run(ctx, call, true)
	if !keep {
		// An AsyncSender still holds the Call's send context (see
		// sentNote): the Call is left to the collector, not reused.
		return resp, err
	}
	// Only the fields the Caller no longer looks at are cleared: pending,
	// gen and index belong to its mutex, and are already as they must be.
	call.Request, call.Response, call.Err = nil, nil, nil
	call.stopCtx, call.done, call.observed = nil, nil, false
	call.sctx.reset()
	c.calls.Put(call)
	return resp, err
}

// Go starts a request as Request does and returns at once. The Call is
// sent on done when it ends; if done is nil a channel with room for one
// is made. Go never blocks on done: should it be full, the Call is
// delivered by a goroutine of its own, so a channel shared by many calls
// needs no exact capacity. Go itself waits for the Sender to accept the
// request.
//
// Go costs no goroutine while the request is pending, and only a few
// hundred bytes: a program may keep as many requests in flight as
// WithMaxPending allows. When the Sender is an AsyncSender that queues the
// request behind a write under way, Go returns at once, and a write that
// then fails ends the Call with the Sender's error, as one SendIQ refuses
// does.
func (c *Caller) Go(ctx context.Context, req *IQ, done chan *Call) *Call {
	mustContext("Caller.Go", ctx)
	if done == nil {
		done = make(chan *Call, 1)
	}
	var call *Call
	if req != nil && req.ID == "" {
		// The request gets its id in a copy, made with the Call.
		g := &goCall{}
		call = &g.call
		call.kind = goCopy
	} else {
		call = &Call{}
	}
	call.Request, call.Done, call.index = req, done, -1
	_, _, _ = c.run(ctx, call, false)
	return call
}

// run starts call and, when wait is set, waits for its end and returns
// it, and whether the Call may be reused (see sentNote).
func (c *Caller) run(ctx context.Context, call *Call, wait bool) (resp *IQ, err error, reusable bool) {
	if wait && c.inlineBlocked(ctx) {
		err := fmt.Errorf("%w (make it from a handler registered with Handle, not HandleInline)", ErrInlineCall)
		call.Err = err
		return nil, err, true
	}
	gen, err := c.start(ctx, call, !wait)
	if err != nil {
		call.Err = err
		if wait {
			return nil, err, true
		}
		call.deliver()
		return nil, err, true
	}
	var note *sentNote
	if c.async != nil {
		// Request waits for the response anyway, and Go not at all: they
		// need not wait for the write as well, when the request queues
		// behind another.
		note = sentNotes.Get().(*sentNote)
		note.c, note.call, note.gen, note.id, note.goCall = c, call, gen, call.Request.ID, !wait
		note.state.Store(noteQueued)
		queued, err := c.async.SendIQAsync(&call.sctx, call.Request, note)
		if !queued {
			note.put()
			note = nil
			if err != nil {
				c.finish(call, gen, nil, sendError(call.Request.ID, err))
			}
		}
	} else if err := c.sender.SendIQ(&call.sctx, call.Request); err != nil {
		c.finish(call, gen, nil, sendError(call.Request.ID, err))
	}
	if !wait {
		// The Call is not reused, and its Sender has returned: what its
		// context keeps for the Sender or for a reuse (a done channel, 96
		// bytes, and a stop function) would stay in every pending request.
		// (A Sender that queued the request holds the context until its
		// verdict, which forgets it then: see sentNote.Sent.)
		if note == nil {
			call.sctx.forget()
		}
		return nil, nil, false
	}
	if ctx.Done() == nil { // context.Background and the like: nothing to watch
		<-call.Done
	} else {
		select {
		case <-call.Done:
		case <-ctx.Done():
			c.finish(call, gen, nil, c.ctxError(call.Request, ctx.Err()))
			<-call.Done
		}
	}
	return call.Response, call.Err, note.reusable()
}

// sendError is the error of a request its Sender did not send. A
// deadline that passes during the send is the request's timeout,
// whichever noticed it first.
func sendError(id string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return timedOut(id, err)
	}
	return notSent(id, err)
}

// sentNote is told the verdict of a request an AsyncSender queued. The
// Sender holds the request's send context, part of its Call, until then:
// a Call whose Request returns first (its response came before the
// write's verdict, or its deadline passed while it queued) is left to the
// collector rather than reused, and the note, not the Call, is what the
// late verdict finds.
type sentNote struct {
	c      *Caller
	call   *Call
	gen    uint64
	id     string // the request's: its IQ is its caller's again once Request returns
	goCall bool   // made by Go: the Call is never reused, nobody waits for the verdict
	state  atomic.Uint32
}

const (
	noteQueued = iota
	noteTold   // Sent has run: the Call may be reused
	noteLeft   // Request returned first: the Call is not reused
)

var sentNotes = sync.Pool{New: func() any { return new(sentNote) }}

// Sent implements Notifier: a request that was not written ends with the
// Sender's error, as when SendIQ returns it.
func (n *sentNote) Sent(err error) {
	c, call, gen := n.c, n.call, n.gen
	if err != nil {
		err = sendError(n.id, err)
	}
	if n.goCall {
		n.put()
		if err != nil {
			c.finish(call, gen, nil, err)
		}
		call.sctx.forget() // see run: the Sender has let go of it
		return
	}
	if !n.state.CompareAndSwap(noteQueued, noteTold) {
		// Request returned and left the Call: nobody else holds n.
		n.put()
	}
	if err != nil {
		// Ends nothing if the Call ended and was reused meanwhile: its
		// gen moved on.
		c.finish(call, gen, nil, err)
	}
}

// reusable reports whether Request may reuse the Call n is about (n is
// nil when the request was not queued): it may once n was told, and n
// then goes back to its pool; otherwise the Sender still holds the
// Call's send context, and n is Sent's to put back.
func (n *sentNote) reusable() bool {
	if n == nil {
		return true
	}
	if n.state.CompareAndSwap(noteQueued, noteLeft) {
		return false
	}
	n.put()
	return true
}

func (n *sentNote) put() {
	n.c, n.call, n.id = nil, nil, ""
	sentNotes.Put(n)
}

// asyncSender returns s as an AsyncSender, or nil.
func asyncSender(s Sender) AsyncSender {
	as, _ := s.(AsyncSender)
	return as
}

// start checks and registers call, and arms its deadline; watchCtx asks
// for ctx's cancellation to end the call (Request watches it itself).
func (c *Caller) start(ctx context.Context, call *Call, watchCtx bool) (uint64, error) {
	req := call.Request
	if err := checkRequest(req); err != nil {
		return 0, err
	}
	if req.To != "" {
		// Checked here; parsed again only for a response from another
		// address than the one the request went to (see Receive).
		if _, err := ParseJID(req.To); err != nil {
			return 0, invalidAddr("to", req.To, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, c.ctxError(req, err)
	}
	if req.ID == "" {
		// A Sender may keep the IQ it was given (a queue, a recorder), so a
		// recycled Call cannot hold the copy; one Go returns can.
		var cp *IQ
		switch call.kind {
		case goCopy:
			g := (*goCall)(unsafe.Pointer(call)) // the Call is g's first field
			g.iq = *req
			fillID(&g.id)
			g.iq.ID = unsafe.String(&g.id[0], idLen)
			cp = &g.iq
		default:
			cp = newIQWithID(req)
		}
		call.Request = cp
		req = cp
	}
	if deadline, ok := ctx.Deadline(); ok {
		call.deadline = int64(deadline.Sub(callEpoch))
	} else {
		call.deadline = int64(satAdd(time.Since(callEpoch), c.timeout))
	}
	// Under the send context's lock: a goroutine of the context package
	// may still read it for the Call's previous use (sendCtx.link).
	call.sctx.mu.Lock()
	call.sctx.c, call.sctx.parent = c, ctx
	call.sctx.mu.Unlock()
	// Before the lock: the hook may replace the request, which Receive
	// reads under it.
	c.observeStart(ctx, call)
	req = call.Request

	c.mu.Lock()
	var refused error
	switch {
	case c.closed != nil:
		refused = closedRequest(req.ID, c.closed)
	case c.pendingLocked() >= c.maxPending:
		refused = fmt.Errorf("%w (%d)", ErrTooManyPending, c.maxPending)
	case c.lookupLocked(req.ID) != nil:
		refused = fmt.Errorf("%w: %q", ErrDuplicateID, req.ID)
	}
	if refused != nil {
		c.mu.Unlock()
		c.observeEnd(call, nil, refused)
		return 0, refused
	}
	c.addLocked(call)
	call.pending = true
	call.via = c.self
	c.pushDeadline(call)
	gen := call.gen
	// Registered under the lock, so that whatever ends the call sees
	// stopCtx set; the callback runs on a goroutine of its own, never here.
	if watchCtx && ctx.Done() != nil {
		call.stopCtx = context.AfterFunc(ctx, func() { c.endByCtx(call, gen) })
	}
	c.mu.Unlock()
	return gen, nil
}

func (c *Caller) ctxError(req *IQ, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return timedOut(req.ID, nil)
	}
	return fmt.Errorf("iq: request %s: %w", req.ID, err)
}

// finish ends call with resp and err unless something ended it first, or
// it has ended and been reused since gen was read.
func (c *Caller) finish(call *Call, gen uint64, resp *IQ, err error) bool {
	c.mu.Lock()
	if !call.pending || call.gen != gen {
		c.mu.Unlock()
		return false
	}
	c.removeLocked(call)
	c.mu.Unlock()
	c.complete(call, resp, err)
	return true
}

// endByCtx ends call with its context's error, unless something ended
// it first or it has ended and been reused since gen was read. It is the
// callback context.AfterFunc runs, kept to three words (a pending request
// keeps it): the request and its context are read under the lock, where
// they are those of the use gen names.
func (c *Caller) endByCtx(call *Call, gen uint64) {
	c.mu.Lock()
	if !call.pending || call.gen != gen {
		c.mu.Unlock()
		return
	}
	req, parent := call.Request, call.sctx.parent
	c.removeLocked(call)
	c.mu.Unlock()
	c.complete(call, nil, c.ctxError(req, parent.Err()))
}

// removeLocked takes call out of pending and the heap; c.mu is held.
func (c *Caller) removeLocked(call *Call) {
	call.pending = false
	call.via = nil
	call.gen++
	c.deleteLocked(call)
	c.removeDeadline(call)
}

// lookupLocked returns the pending request with id, or nil; c.mu is held.
func (c *Caller) lookupLocked(id string) *Call {
	if call := c.pending[c.hash(id)]; call != nil && call.Request.ID == id {
		return call
	}
	if len(c.clash) == 0 {
		return nil
	}
	return c.clash[id]
}

// addLocked makes call pending under its id, which no pending request
// has; c.mu is held.
func (c *Caller) addLocked(call *Call) {
	h := c.hash(call.Request.ID)
	if c.pending[h] == nil {
		c.pending[h] = call
		return
	}
	if c.clash == nil {
		c.clash = make(map[string]*Call)
	}
	c.clash[call.Request.ID] = call
}

// deleteLocked undoes addLocked; c.mu is held.
func (c *Caller) deleteLocked(call *Call) {
	id := call.Request.ID
	if h := c.hash(id); c.pending[h] == call {
		delete(c.pending, h)
		return
	}
	delete(c.clash, id)
	if len(c.clash) == 0 {
		c.clash = nil
	}
}

// pendingLocked is how many requests are pending; c.mu is held.
func (c *Caller) pendingLocked() int { return len(c.pending) + len(c.clash) }

// complete fills in call's outcome and delivers it; call is no longer
// pending.
func (c *Caller) complete(call *Call, resp *IQ, err error) {
	if call.stopCtx != nil {
		// A callback already under way finds the call ended (its gen
		// moved on), under this Caller's mutex: the pool is per Caller.
		call.stopCtx()
	}
	if resp == nil { // an answered request's send has nothing to give up
		call.sctx.end(sendCtxErr(err))
	}
	c.observeEnd(call, resp, err)
	call.Response, call.Err = resp, err
	call.deliver()
}

func (call *Call) deliver() {
	select {
	case call.Done <- call:
	default:
		go func() { call.Done <- call }()
	}
}

// Receive takes an incoming result or error and reports whether it ended a
// pending request. It is dropped (false) when it is of another type, when
// no request with its id is pending, or when its sender may not answer that
// request. The senders allowed are the request's to, its bare JID and its
// domain; and, whatever the to, the local server's own: no from at all, and
// the local JID (WithLocalJID), its bare JID and its domain. Until the local
// JID is known, a request with no to accepts any sender. Addresses compare
// after RFC 7622 normalisation.
//
// A result with more than one child element ends its request with an error
// wrapping ErrInvalid; an error without a readable <error/> ends it with an
// undefined-condition StanzaError.
func (c *Caller) Receive(resp *IQ) bool {
	if resp == nil || !resp.IsResponse() {
		return false
	}
	// What the response ends its request with depends on it alone: worked
	// out before the lock, so that the lock is held for the lookup alone.
	var err error
	switch {
	case resp.Type == TypeError && resp.Error != nil:
		err = resp.Error
	case resp.Type == TypeError:
		err = &StanzaError{Type: Cancel, Condition: UndefinedCondition}
	case resp.NumChildren() > 1:
		err = invalidf("result to %s has %d child elements, want at most one", resp.ID, resp.NumChildren())
	}
	c.mu.Lock()
	call := c.lookupLocked(resp.ID)
	if call == nil {
		c.mu.Unlock()
		return false
	}
	rawTo, local := call.Request.To, c.local
	// The common cases need no address parsed, and end the request under
	// the same lock as the lookup: a response from the request's to, from
	// the local server (no from), or to a request with no to while the
	// local JID is unknown.
	if resp.From == rawTo || resp.From == "" || (rawTo == "" && local.IsZero()) {
		c.removeLocked(call)
		c.mu.Unlock()
		c.complete(call, resp, err)
		return true
	}
	gen := call.gen
	c.mu.Unlock()
	if !allowedSender(resp.From, rawTo, local) {
		c.log.WarnContext(countMetric(c.metrics, Metrics.SpoofedResponse), logSpoofed, "id", resp.ID, "from", resp.From, "to", rawTo)
		return false
	}
	return c.finish(call, gen, resp, err)
}

// allowedSender applies Receive's rule. rawTo is the request's address
// as sent, which start found well-formed.
func allowedSender(from, rawTo string, local JID) bool {
	if from == "" || from == rawTo {
		return true
	}
	f, err := ParseJID(from)
	if err != nil {
		return false
	}
	if rawTo != "" {
		// Parsed again rather than kept parsed in every pending Call: only
		// a response from another form of the address comes here.
		if to, err := ParseJID(rawTo); err == nil && (f == to || f == to.Bare() || f == to.Domain()) {
			return true
		}
	}
	return !local.IsZero() && (f == local || f == local.Bare() || f == local.Domain())
}

// Get sends a get carrying payload to the address to and returns the
// result's payload, nil for an empty result. Errors are Request's.
func (c *Caller) Get(ctx context.Context, to string, payload *Element) (*Element, error) {
	return c.do(ctx, TypeGet, to, payload)
}

// Set sends a set carrying payload to the address to and returns the
// result's payload, nil for an empty result. Errors are Request's.
func (c *Caller) Set(ctx context.Context, to string, payload *Element) (*Element, error) {
	return c.do(ctx, TypeSet, to, payload)
}

func (c *Caller) do(ctx context.Context, t Type, to string, payload *Element) (*Element, error) {
	if ctx == nil { // named here, where the user's call is
		panic("iq: Caller." + callerMethod(t) + ": nil Context")
	}
	resp, err := c.doIQ(ctx, t, to, payload)
	if err != nil {
		return nil, err
	}
	return resp.Payload, nil
}

// doIQ is do, returning the whole response.
func (c *Caller) doIQ(ctx context.Context, t Type, to string, payload *Element) (*IQ, error) {
	// The IQ is ours: giving it its id here, in the same allocation,
	// spares Request a copy.
	return c.Request(ctx, newIQWithID(&IQ{Type: t, To: to, Payload: payload}))
}

func callerMethod(t Type) string {
	if t == TypeGet {
		return "Get"
	}
	return "Set"
}

// Pending reports how many requests are waiting for a response.
func (c *Caller) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pendingLocked()
}

// Close fails every pending request with ErrClosed at once, and every
// request made after. It is idempotent and always returns nil.
func (c *Caller) Close() error { return c.CloseWithError(nil) }

// CloseWithError is Close with a cause: requests fail with an error that
// wraps both ErrClosed and cause (when not nil). Only the first close's
// cause counts.
func (c *Caller) CloseWithError(cause error) error {
	err := closeError(cause)
	c.mu.Lock()
	if c.closed != nil {
		c.mu.Unlock()
		return nil
	}
	c.closed = err
	calls := make([]*Call, 0, c.pendingLocked())
	for _, call := range c.pending {
		calls = append(calls, call)
	}
	for _, call := range c.clash {
		calls = append(calls, call)
	}
	for _, call := range calls {
		c.removeLocked(call)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	for _, call := range calls {
		c.complete(call, nil, closedRequest(call.Request.ID, err))
	}
	return nil
}

// ErrConnectionLost is wrapped by the error of a request that was sent on
// a stream that ended before its response came (see FailSentVia). It wraps
// ErrClosed, which it refines: the request is lost with its stream, not
// because the Caller closed, and the Caller takes new requests, which a
// program that reconnects may send again.
var ErrConnectionLost = errs.New("iq: connection lost", ErrClosed)

// sendCtxKey finds a request's send context among the values of a context
// derived from it, for SendVia.
type sendCtxKey struct{}

// SendVia sends i through s on behalf of a Sender that forwards what it
// is given to a stream of its choosing (a connection that is replaced
// when it drops, one of a pool): ctx and i are those its SendIQ got. When
// ctx is a Caller's context for sending a request, SendVia first records
// that the request goes out through s, so that FailSentVia(s, ...) fails
// it should s's stream end before the response comes. The last record
// counts: forwarding Senders stacked on each other each call SendVia, and
// the stream nearest the wire wins. A reply's context records nothing.
//
// s must be comparable (a pointer, such as a *stream.Conn): SendVia panics
// otherwise, as FailSentVia could never find the request.
func SendVia(ctx context.Context, s Sender, i *IQ) error {
	recordVia("SendVia", ctx, s)
	return s.SendIQ(ctx, i)
}

// SendViaAsync is SendVia for a forwarding Sender that is an AsyncSender
// itself, and forwards SendIQAsync: it records that the request goes out
// through s, then calls s.SendIQAsync(ctx, i, n).
func SendViaAsync(ctx context.Context, s AsyncSender, i *IQ, n Notifier) (queued bool, err error) {
	recordVia("SendViaAsync", ctx, s)
	return s.SendIQAsync(ctx, i, n)
}

// recordVia records, when ctx is a Caller's context for sending a
// request, that the request goes out through s (see SendVia).
func recordVia(fn string, ctx context.Context, s Sender) {
	mustSender(fn, s)
	if !isComparable(s) {
		panic(fmt.Sprintf("iq: %s: a %T cannot be compared, so its requests could not be found again", fn, s))
	}
	sc, ok := ctx.(*sendCtx)
	if !ok {
		sc, _ = ctx.Value(sendCtxKey{}).(*sendCtx)
	}
	if sc != nil && sc.c != nil {
		c := sc.c
		c.mu.Lock()
		// While a Sender runs, its request cannot have ended and been
		// reused: pending means pending in this use.
		if call := sc.call(); call.pending {
			call.via = s
		}
		c.mu.Unlock()
	}
}

// FailSentVia fails, at once, every pending request that went out through
// s, whose stream has ended, with an error that wraps ErrConnectionLost
// (and so ErrClosed) and cause, when not nil: "iq: request 5x7: connection
// lost: stream: transport: EOF". A request went out through s when
// SendVia sent it there, or, without SendVia, when s is the Caller's own
// Sender. The Caller stays open: requests still waiting for a stream, and
// new ones, are not affected. It returns how many requests it failed.
//
// stream.Conn.ServeShared calls it when its stream ends, so that an
// Endpoint outlives its streams; Close ends every request instead.
func (c *Caller) FailSentVia(s Sender, cause error) int {
	mustSender("FailSentVia", s)
	err := ErrConnectionLost
	if cause != nil {
		err = errs.New("iq: connection lost: "+errs.Trim(cause, "iq: "), ErrConnectionLost, cause)
	}
	c.mu.Lock()
	var calls []*Call
	for _, call := range c.pending {
		if call.via == s {
			calls = append(calls, call)
		}
	}
	for _, call := range c.clash {
		if call.via == s {
			calls = append(calls, call)
		}
	}
	for _, call := range calls {
		c.removeLocked(call)
	}
	c.mu.Unlock()
	for _, call := range calls {
		c.complete(call, nil, closedRequest(call.Request.ID, err))
	}
	return len(calls)
}

// isComparable reports whether s can be compared with ==, without panicking.
func isComparable(s Sender) bool {
	return s != nil && reflect.TypeOf(s).Comparable()
}
