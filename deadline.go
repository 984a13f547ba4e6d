package iq

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"
	"unsafe"
)

// The Caller's deadlines live in a binary min-heap under its mutex, each
// Call knowing its index so that an answered request leaves in O(log n).
// One time.Timer is set for the earliest deadline; when it fires, every
// request that is due fails with ErrTimeout. This costs no allocation per
// request, where a timer each would cost two.

func (c *Caller) pushDeadline(call *Call) {
	call.index = int32(len(c.deadlines)) // start refuses past maxHeap
	c.deadlines = append(c.deadlines, call)
	c.up(int(call.index))
	if c.deadlines[0] == call {
		c.armTimer(call.deadline)
	}
}

func (c *Caller) removeDeadline(call *Call) {
	i := int(call.index)
	if i < 0 {
		return
	}
	last := len(c.deadlines) - 1
	if i != last {
		c.swap(i, last)
	}
	c.deadlines[last] = nil
	c.deadlines = c.deadlines[:last]
	call.index = -1
	if i != last {
		if !c.down(i) {
			c.up(i)
		}
	}
	// The timer is left as it is: firing early only finds nothing due.
	if cap(c.deadlines) > 1024 && len(c.deadlines) < cap(c.deadlines)/4 {
		c.deadlines = append([]*Call(nil), c.deadlines...)
	}
}

// armTimer sets the timer for at (since callEpoch) unless it is set for
// an earlier time.
func (c *Caller) armTimer(at int64) {
	if c.timer == nil {
		c.timer = time.AfterFunc(untilEpoch(at), c.expire)
	} else if !c.timerSet || at < c.timerAt {
		c.timer.Reset(untilEpoch(at))
	} else {
		return
	}
	c.timerAt, c.timerSet = at, true
}

// untilEpoch is how long until at, a time since callEpoch; 0 once it has
// passed (at may be as far back as the smallest Duration).
func untilEpoch(at int64) time.Duration {
	now := int64(time.Since(callEpoch))
	if at <= now {
		return 0
	}
	return time.Duration(at - now)
}

// satAdd is a+b, or the largest Duration when that overflows.
func satAdd(a, b time.Duration) time.Duration {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxInt64
}

// expire fails every request whose deadline has passed and sets the timer
// for the next one.
func (c *Caller) expire() {
	now := int64(time.Since(callEpoch))
	var due []*Call
	c.mu.Lock()
	c.timerSet = false
	for len(c.deadlines) > 0 && c.deadlines[0].deadline <= now {
		call := c.deadlines[0]
		c.removeLocked(call)
		due = append(due, call)
	}
	if len(c.deadlines) > 0 && c.closed == nil {
		c.armTimer(c.deadlines[0].deadline)
	}
	c.mu.Unlock()
	for _, call := range due {
		c.complete(call, nil, timedOut(call.Request.ID, nil))
	}
}

func (c *Caller) less(i, j int) bool {
	return c.deadlines[i].deadline < c.deadlines[j].deadline
}

func (c *Caller) swap(i, j int) {
	d := c.deadlines
	d[i], d[j] = d[j], d[i]
	d[i].index = int32(i)
	d[j].index = int32(j)
}

func (c *Caller) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !c.less(j, i) {
			break
		}
		c.swap(i, j)
		j = i
	}
}

func (c *Caller) down(i0 int) bool {
	i, n := i0, len(c.deadlines)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && c.less(r, l) {
			j = r
		}
		if !c.less(j, i) {
			break
		}
		c.swap(i, j)
		i = j
	}
	return i > i0
}

// The contexts a Caller and a Callee give their Sender are their own types
// rather than context.WithDeadline's, which would cost a timer, a context
// and a goroutine-free cancellation hook (several allocations) on every
// request and every reply. Both need no allocation in the steady state:
// their done channel is made only when Done is asked for, and the first
// function registered through their AfterFunc method (the hook that
// context.AfterFunc and stream.Conn look for) needs none.

// closedChan is the done channel of a context that ended before anyone
// asked for its channel.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// returnFalse is the stop function of an AfterFunc registered too late.
func returnFalse() bool { return false }

// ctxCore is the cancellation state the package's contexts share.
type ctxCore struct {
	mu    sync.Mutex
	err   error         // non-nil once done
	done  chan struct{} // made when first asked for; closed at the end
	f     func()        // the first function registered by AfterFunc
	fStop func() bool   // its stop function, made once and reused
	more  *[]*afterFunc // further registrations, rare
}

type afterFunc struct {
	k *ctxCore
	f func()
}

// stop unregisters a, reporting whether it was still to run.
func (a *afterFunc) stop() bool {
	a.k.mu.Lock()
	defer a.k.mu.Unlock()
	if a.k.more == nil {
		return false
	}
	more := *a.k.more
	for i, x := range more {
		if x == a {
			*a.k.more = append(more[:i], more[i+1:]...)
			return true
		}
	}
	return false
}

func (k *ctxCore) stopFirst() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.f == nil {
		return false
	}
	k.f = nil
	return true
}

// forget drops what k keeps only for its Sender or for a reuse, for a
// context that will not be reused, once its Sender has returned: the stop
// function afterFunc keeps (a holder of it may still call it), and a done
// channel not yet closed, which no Sender holds past its return (see
// Sender); should Done be asked again, a new one is made, closed at the
// end as the first would have been. What is registered stays.
func (k *ctxCore) forget() {
	k.mu.Lock()
	k.fStop = nil
	if k.err == nil {
		k.done = nil
	}
	k.mu.Unlock()
}

// doneLocked returns the done channel, making it if need be; k.mu is held.
func (k *ctxCore) doneLocked() chan struct{} {
	if k.done == nil {
		if k.err != nil {
			return closedChan
		}
		k.done = make(chan struct{})
	}
	return k.done
}

// afterFunc registers f to run once the context is done: on the goroutine
// that ends it, or on a goroutine of its own if it is done already (the
// registrant may hold a lock f needs). f must not block.
func (k *ctxCore) afterFunc(f func()) func() bool {
	k.mu.Lock()
	if k.err != nil {
		k.mu.Unlock()
		go f()
		return returnFalse
	}
	if k.f == nil {
		k.f = f
		if k.fStop == nil {
			k.fStop = k.stopFirst
		}
		stop := k.fStop
		k.mu.Unlock()
		return stop
	}
	a := &afterFunc{k: k, f: f}
	if k.more == nil {
		k.more = new([]*afterFunc)
	}
	*k.more = append(*k.more, a)
	k.mu.Unlock()
	return a.stop
}

// endLocked marks the context done with err, if it is not yet, and
// returns the functions to run once k.mu is released.
func (k *ctxCore) endLocked(err error) (func(), *[]*afterFunc) {
	if k.err != nil {
		return nil, nil
	}
	k.err = err
	if k.done != nil {
		close(k.done)
	}
	f, more := k.f, k.more
	k.f, k.more = nil, nil
	return f, more
}

// end marks the context done with err, once, and runs what was registered.
func (k *ctxCore) end(err error) {
	k.mu.Lock()
	f, more := k.endLocked(err)
	k.mu.Unlock()
	runAfter(f, more)
}

func runAfter(f func(), more *[]*afterFunc) {
	if f != nil {
		f()
	}
	if more != nil {
		for _, a := range *more {
			a.f()
		}
	}
}

// resetLocked readies k for another use; k.mu is held. A done channel
// that was never closed is kept: nobody may still hold it, as a Sender
// must not keep its context once SendIQ has returned.
func (k *ctxCore) resetLocked() {
	if k.err != nil {
		k.done = nil
	}
	k.err, k.f, k.more = nil, nil, nil
}

// sendCtx is the context a Caller gives its Sender for one request. It is
// done when the request ends unanswered: at its deadline, when its own
// context ends, when the Caller closes. (An answer ends nothing: the send
// it answers is over, and a stream that watches the context would only be
// interrupted for nothing.) Its deadline is the request's; its values are
// those of the request's context.
type sendCtx struct {
	ctxCore
	c      *Caller
	parent context.Context
}

// call returns the Call s is part of: a sendCtx is only ever a Call's
// sctx field, and finds its Call at a fixed distance rather than through
// a pointer of its own in every pending request.
func (s *sendCtx) call() *Call {
	return (*Call)(unsafe.Add(unsafe.Pointer(s), -int(unsafe.Offsetof(Call{}.sctx))))
}

// Deadline implements context.Context.
func (s *sendCtx) Deadline() (time.Time, bool) {
	return callEpoch.Add(time.Duration(s.call().deadline)), true
}

// EndedOrExpired reports whether s has ended or its deadline has
// passed, with one read of the monotonic clock. stream.Conn asks it of
// every stanza's context on its way out, rather than Err and then
// Deadline against the clock (see endedCtx there).
func (s *sendCtx) EndedOrExpired() bool {
	return s.Err() != nil || int64(time.Since(callEpoch)) >= s.call().deadline
}

// Done implements context.Context.
func (s *sendCtx) Done() <-chan struct{} {
	s.link()
	s.mu.Lock()
	d := s.doneLocked()
	s.mu.Unlock()
	return d
}

// Err implements context.Context: DeadlineExceeded once the request timed
// out, Canceled once the Caller closed, or the error of its own context.
func (s *sendCtx) Err() error {
	s.mu.Lock()
	err, parent := s.err, s.parent
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return parent.Err()
}

// Value implements context.Context; it knows sendCtxKey (see SendVia).
func (s *sendCtx) Value(key any) any {
	if _, ok := key.(sendCtxKey); ok {
		return s
	}
	s.mu.Lock()
	parent := s.parent
	s.mu.Unlock()
	return parent.Value(key)
}

// AfterFunc runs f on the goroutine that ends the request (its timer,
// Close, its context's cancellation), once; context.AfterFunc and stream.Conn use it to watch
// the context without a goroutine of their own. f must not block.
func (s *sendCtx) AfterFunc(f func()) func() bool {
	s.link()
	return s.afterFunc(f)
}

// link makes the end of the request's own context end the request, and so
// this one, when someone is watching: Request, which otherwise looks at
// its context only after the Sender returns, arms nothing for a Sender
// that never asks.
//
// The fields it reads are read under s.mu: a Call is recycled once its
// Request returns, and a goroutine the context package started for a
// Sender that wrapped this context (context.AfterFunc or WithCancel over
// a WithValue, say) may ask for Done after that, so that s may already
// serve the Call's next use. Linking that use is harmless (it links to
// its own context); reading its fields unsynchronised would not be.
func (s *sendCtx) link() {
	call := s.call()
	s.mu.Lock()
	parent := s.parent
	s.mu.Unlock()
	if parent.Done() == nil {
		return
	}
	s.mu.Lock()
	if s.parent != parent { // another use began meanwhile: not ours to link
		s.mu.Unlock()
		return
	}
	linked, c := call.linked, s.c
	call.linked = true
	s.mu.Unlock()
	if linked {
		return
	}
	// While the Sender runs, the call cannot have been reused: pending
	// means pending in this use.
	c.mu.Lock()
	if call.pending && call.stopCtx == nil {
		gen := call.gen
		call.stopCtx = context.AfterFunc(parent, func() { c.endByCtx(call, gen) })
	}
	c.mu.Unlock()
}

// sendCtxErr is the error a request's sendCtx ends with, for the error
// the request ended with.
func sendCtxErr(err error) error {
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return context.Canceled
}

// reset readies s for the Call's next use.
func (s *sendCtx) reset() {
	s.mu.Lock()
	s.resetLocked()
	s.parent, s.call().linked = context.Background(), false // not nil: see Sender
	s.mu.Unlock()
}

// replyCtx is the context a Callee gives its Sender for one reply: done
// when its reply timeout (WithReplyTimeout) has passed since the reply was
// due, and only then, whatever becomes of the request's context, whose
// values it carries.
type replyCtx struct {
	ctxCore
	parent   context.Context
	deadline int64       // since callEpoch, as a Call's
	watch    *replyWatch // its Callee's, which ends it at its deadline
	armed    bool        // watched: someone asked for Done or AfterFunc

	// Its index in watch's heap while it is there, -1 otherwise; under
	// watch.mu.
	index int

	// For a reply an AsyncSender queued: the Callee to tell (Sent), and
	// the reply's id and to, named in the log should it not be written.
	callee *Callee
	id, to string
}

// Sent implements Notifier for a handler's reply an AsyncSender queued
// (see Callee.reply): it logs a reply not written, then releases r and
// gives back the handler's slot.
func (r *replyCtx) Sent(err error) {
	c, id, to := r.callee, r.id, r.to
	r.callee, r.id, r.to = nil, "", ""
	if err != nil {
		c.logReplyNotSent(id, to, err)
	}
	r.release()
	c.release()
}

var replyCtxPool = sync.Pool{New: func() any { return &replyCtx{index: -1} }}

// newReplyCtx returns a reply context ending d from now, which w ends
// once someone watches it; release it once SendIQ has returned.
func newReplyCtx(parent context.Context, d time.Duration, w *replyWatch) *replyCtx {
	r := replyCtxPool.Get().(*replyCtx)
	r.parent = parent
	r.deadline = int64(satAdd(time.Since(callEpoch), d)) // a monotonic read: half a time.Now
	r.watch = w
	return r
}

func (r *replyCtx) release() {
	r.mu.Lock()
	if r.armed {
		r.watch.remove(r)
		r.armed = false
	}
	r.watch = nil // pooled, it keeps no Callee's watch
	r.resetLocked()
	r.parent = context.Background()
	r.mu.Unlock()
	replyCtxPool.Put(r)
}

// armLocked has r's watch end r at its deadline; r.mu is held.
func (r *replyCtx) armLocked() {
	if r.armed || r.err != nil {
		return
	}
	r.armed = true
	r.watch.add(r)
}

// expire ends r at its deadline. Called for r's previous use (its watch
// took it out of its heap just before it was released and reused), it
// finds r unarmed or its deadline still ahead, and does nothing.
func (r *replyCtx) expire() {
	r.mu.Lock()
	if !r.armed || int64(time.Since(callEpoch)) < r.deadline {
		r.mu.Unlock()
		return
	}
	f, more := r.endLocked(context.DeadlineExceeded)
	r.mu.Unlock()
	runAfter(f, more)
}

// Deadline implements context.Context.
func (r *replyCtx) Deadline() (time.Time, bool) {
	return callEpoch.Add(time.Duration(r.deadline)), true
}

// Done implements context.Context.
func (r *replyCtx) Done() <-chan struct{} {
	r.mu.Lock()
	r.armLocked()
	d := r.doneLocked()
	r.mu.Unlock()
	return d
}

// EndedOrExpired is sendCtx.EndedOrExpired for a reply's context, whose
// Err reads the clock itself while no one watches it: Err and then
// Deadline against the clock would read it twice.
func (r *replyCtx) EndedOrExpired() bool {
	r.mu.Lock()
	err, deadline := r.err, r.deadline
	r.mu.Unlock()
	return err != nil || int64(time.Since(callEpoch)) >= deadline
}

// Err implements context.Context. Unwatched, r needs no timer: its
// deadline is checked against the clock.
func (r *replyCtx) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil && !r.armed && int64(time.Since(callEpoch)) >= r.deadline {
		return context.DeadlineExceeded
	}
	return r.err
}

// Value implements context.Context.
func (r *replyCtx) Value(key any) any { return r.parent.Value(key) }

// AfterFunc runs f once r's deadline passes, on the watch's goroutine;
// see sendCtx.AfterFunc.
func (r *replyCtx) AfterFunc(f func()) func() bool {
	r.mu.Lock()
	r.armLocked()
	r.mu.Unlock()
	return r.afterFunc(f)
}
