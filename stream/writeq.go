package stream

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/xmpp-iq/iq"
)

// Write coalescing. The write lock (wsem) is held by one writer at a time.
// A sender that finds it free writes its stanza at once, with one Write of
// its own bytes: sequential traffic waits for nothing. A sender that finds
// it held joins a bounded FIFO queue and waits. The holder, when its write
// is over, does not release the lock while the queue has stanzas: it hands
// it to the sender at the head, which writes everything queued by then (up
// to maxBatch bytes) in one Write, then hands the lock on in turn. So
// under load a Write carries the stanzas that queued up during the last
// one, each still whole and never interleaved with another. On a busy
// stream (stanzas queued lately) a sender that finds the lock free first
// yields the processor once, so that the senders already woken (callers
// and handlers the read loop just released) queue behind it and share
// its Write, instead of each making a system call of its own between
// turns of the scheduler. Every sender learns what became of its own
// stanza:
//
//   - written whole: nil;
//   - its context ended while it waited in the queue: ctx's error, and
//     nothing of it is written;
//   - its context ended while its batch was being written: the write is
//     interrupted (on a transport with write deadlines that survives a
//     write cut short) and the sender returns ctx's error at once. A
//     stanza cut short is still finished in the background, as the stream
//     needs; stanzas of that batch not yet begun whose contexts are alive
//     go back to the head of the queue; those written whole are reported
//     written. On a transport that a write cut short would break (a
//     *tls.Conn: see cutIsFatal) the write is never interrupted, for that
//     would end the stream for every other sender: the sender still
//     returns ctx's error at once, and the Write, made by a goroutine of
//     its own, goes on, its stanzas all written whole once the peer reads;
//   - the transport failed: the stream ends; stanzas written whole are
//     reported written, the others fail with an error wrapping ErrClosed;
//   - the stream was closed before its stanza's write began: an error
//     wrapping ErrClosed, and nothing of it is written.
//
// A sender that does not wait (writeAsync, for SendIQAsync) writes at
// once when it finds the lock free, as any sender does; when it finds the
// lock held, its stanza joins the queue and the sender returns. Its
// verdict, the same as above, goes to its notifier, told once qmu is
// released by the goroutine that settled it. When such a stanza reaches
// the head of the queue as the lock is handed on, a goroutine of its own
// leads its batch (leadAsync). Its context ending does not cut a write
// under way by itself, having no sender waiting to notice: the write of a
// batch holding such stanzas is cut at the earliest of their deadlines
// when that comes before its leader's.
//
// The invariant that makes the hand-off safe: the queue holds a stanza only
// while the lock is held, for a sender queues only after failing to take
// the lock, and the holder releases it only when the queue is empty, both
// under qmu. So a free lock means an empty queue, and a sender taking a
// free lock passes nobody.

// maxBatch bounds the bytes one coalesced Write carries. A stanza larger
// than what is left goes in the next Write; one larger than maxBatch goes
// alone, from its own buffer.
const maxBatch = 64 << 10

// busyYields is how many writes in a row must find nobody queued behind
// them before a stream counts as quiet again, and its senders stop
// yielding (see yieldThenLead).
const busyYields = 8

// DefaultWriteQueue bounds how many stanzas wait for the write lock at
// once; more senders wait, heeding their contexts, until the queue has
// room (see Conn.SendIQ).
const DefaultWriteQueue = 1024

// wstate is where a queued stanza stands; it is guarded by Conn.qmu.
type wstate uint8

const (
	wQueued    wstate = iota // in the queue
	wLead                    // handed the lock; its signal is sent
	wWriting                 // in the write under way
	wFinishing               // cut short: its rest goes out in the background
	wDone                    // its verdict is sent
	wAbandoned               // its sender returned: nobody signals it
)

// wreq is one stanza waiting to be written, and its sender's mailbox.
type wreq struct {
	b     []byte
	ctx   context.Context
	end   int    // where it ends in the batch being written
	gen   uint64 // the write it is in, while wWriting
	state wstate
	err   error
	sig   chan bool // one signal per wait: true hands the lock, false gives err
	// n, when not nil, is told the verdict of a stanza queued by
	// writeAsync, whose sender does not wait: no signal is sent on sig.
	// bp is the encoding buffer b came from, returned once b is written.
	n  iq.Notifier
	bp *[]byte
	// aidx is its index in Conn.async while it is listed there (see
	// sweep), -1 otherwise; under qmu.
	aidx int
}

var wreqPool = sync.Pool{New: func() any { return &wreq{sig: make(chan bool, 1), aidx: -1} }}

func putReq(r *wreq) {
	r.b, r.ctx, r.err, r.n, r.bp = nil, nil, nil, nil, nil
	wreqPool.Put(r)
}

// write writes b, one or more whole elements, after any write under way
// (see the comment at the top of this file and SendIQ's doc).
func (c *Conn) write(ctx context.Context, b []byte) error {
	if settled, err := c.admit(ctx, b); settled {
		return err
	}
	r := wreqPool.Get().(*wreq)
	r.b, r.ctx, r.state, r.err = b, ctx, wQueued, nil
	c.pushLocked(r)
	c.qunlock()
	return c.await(r)
}

// admit is where every sender begins: it writes b at once when the lock
// is free, or refuses it (ctx done, the stream closing), and then reports
// settled with b's verdict; otherwise it returns with qmu held and room
// in the queue, for the sender to queue its stanza.
func (c *Conn) admit(ctx context.Context, b []byte) (settled bool, err error) {
	// A done context writes nothing, even when the lock is free too.
	if err := ctxEndErr(ctx); err != nil {
		return true, err
	}
	select {
	case c.wsem <- struct{}{}:
		if c.busy.Load() > 0 {
			return true, c.yieldThenLead(ctx, b)
		}
		return true, c.writeAlone(ctx, b)
	default:
	}
	c.qmu.Lock()
	for {
		if c.isClosing() {
			c.qunlock()
			return true, c.closedErr()
		}
		select {
		case c.wsem <- struct{}{}: // released meanwhile, so the queue is empty
			c.qunlock()
			// ctx may have ended while it waited for room.
			if err := ctxEndErr(ctx); err != nil {
				c.handoff()
				return true, err
			}
			return true, c.writeAlone(ctx, b)
		default:
		}
		if c.qn < c.qmax {
			return false, nil
		}
		// The queue is full: wait for room, as long as ctx lets us.
		if c.qspace == nil {
			c.qspace = make(chan struct{})
		}
		room := c.qspace
		c.qunlock()
		select {
		case <-room:
		case <-ctx.Done():
			return true, ctx.Err()
		case <-c.closing:
			return true, c.closedErr()
		}
		c.qmu.Lock()
	}
}

// writeAsync is write for a sender that does not wait for its stanza's
// write when the lock is held: the stanza joins the queue and writeAsync
// returns queued, and n is told its verdict later, exactly once (see
// tellLocked). Otherwise the stanza was written, or refused, before
// writeAsync returned, with err its verdict, and n is not told. b belongs
// to bp, which goes back to the pool once b is no longer needed.
func (c *Conn) writeAsync(ctx context.Context, b []byte, bp *[]byte, n iq.Notifier) (queued bool, err error) {
	if settled, err := c.admit(ctx, b); settled {
		return false, err
	}
	r := wreqPool.Get().(*wreq)
	r.b, r.ctx, r.state, r.err, r.n, r.bp = b, ctx, wQueued, nil, n, bp
	c.pushLocked(r)
	if ctx.Done() != nil {
		c.listAsyncLocked(r)
	}
	c.qunlock()
	return true, nil
}

// sweepEvery bounds how long a stanza queued by writeAsync whose context
// is cancelled before its deadline (or has none) waits to be told so.
const sweepEvery = 100 * time.Millisecond

// listAsyncLocked lists r, a stanza writeAsync queued with a context that
// can end, for sweep, and arms sweep for its deadline if that comes first.
func (c *Conn) listAsyncLocked(r *wreq) {
	r.aidx = len(c.async)
	c.async = append(c.async, r)
	d, ok := r.ctx.Deadline()
	switch {
	case c.sweepAt.IsZero():
		when := time.Now().Add(sweepEvery)
		if ok && d.Before(when) {
			when = d
		}
		c.armSweepLocked(when)
	case ok && d.Before(c.sweepAt):
		c.armSweepLocked(d)
	}
}

// unlistAsyncLocked takes r off the list, once it has its verdict or
// leads its own write.
func (c *Conn) unlistAsyncLocked(r *wreq) {
	i := r.aidx
	if i < 0 {
		return
	}
	last := len(c.async) - 1
	c.async[i] = c.async[last]
	c.async[i].aidx = i
	c.async[last] = nil
	c.async = c.async[:last]
	r.aidx = -1
}

func (c *Conn) armSweepLocked(when time.Time) {
	c.sweepAt = when
	if c.sweepT == nil {
		c.sweepT = time.AfterFunc(time.Until(when), c.sweepFn)
	} else {
		c.sweepT.Reset(time.Until(when))
	}
}

// sweep does for the stanzas writeAsync queued what await does for a
// waiting sender when its context ends: a stanza still queued is dropped
// and told its context's error; one in a batch being written is told too,
// and the write is cut short where the transport allows (see
// interruptGen); one cut short and being finished is told. Without it, a
// stanza queued behind a write that nothing cuts short (on a transport
// where a cut write is fatal, a stanza being finished, a batch whose
// leader has no deadline) would learn nothing until the peer reads: a
// Callee would hold its handler's slot past its reply timeout. One timer
// per Conn, armed for the earliest deadline among the listed stanzas (and
// sweepEvery at the latest, for a context cancelled early), rather than
// one per stanza: under load it fires about once per sweepEvery, and the
// timers of a million queued stanzas are not set and stopped.
func (c *Conn) sweep() {
	c.qmu.Lock()
	c.sweepAt = time.Time{}
	var cut []uint64
	var next time.Time
	for i := 0; i < len(c.async); {
		r := c.async[i]
		if !ctxEnded(r.ctx) {
			if d, ok := r.ctx.Deadline(); ok && (next.IsZero() || d.Before(next)) {
				next = d
			}
			i++
			continue
		}
		switch r.state {
		case wQueued:
			c.qn--
			c.roomLocked()
			r.err = queuedCtxErr(r.ctx)
		case wWriting:
			cut = append(cut, r.gen)
			r.err = fmt.Errorf("stream: transport: %w", queuedCtxErr(r.ctx))
		default: // wFinishing: the only other state a listed stanza is in
			r.err = fmt.Errorf("stream: transport: %w", queuedCtxErr(r.ctx))
		}
		// Abandoned: whoever holds r now (the queue, a batch, finishTail)
		// skips it and never tells it, nor puts it back in the pool.
		r.state = wAbandoned
		c.tellLocked(r) // unlists r: c.async[i] is another now
	}
	if len(c.async) > 0 {
		when := time.Now().Add(sweepEvery)
		if !next.IsZero() && next.Before(when) {
			when = next
		}
		c.armSweepLocked(when)
	}
	// Cut before any notifier runs: one that writes on this Conn would
	// wait for the write it was told of, which only the cut ends.
	for _, gen := range cut {
		c.interruptGen(gen)
	}
	c.qunlock()
}

// leadAsync leads the write of r, a stanza queued by writeAsync that was
// handed the lock, on a goroutine of its own (its sender does not wait),
// then tells r's notifier.
func (c *Conn) leadAsync(r *wreq) {
	n, b, bp := r.n, r.b, r.bp
	r.n, r.bp = nil, nil // from here r's sender is this goroutine
	err := c.lead(r)
	putBuf(bp, b)
	n.Sent(err)
}

// tellLocked gives r its verdict, r.err: a signal to its waiting sender,
// or, for a stanza queued by writeAsync, its notifier, once qmu is
// released (qunlock; qunlockDetached where the goroutine holds the write
// lock or is closing the stream): a notifier may run a program's code, a
// Caller's hook or a logger, which may write on this Conn or close it.
// Its buffer goes back to the pool at once, and r too, unless abandoned
// (still in the queue or a batch, which skip it).
func (c *Conn) tellLocked(r *wreq) {
	if r.n == nil {
		r.sig <- false
		return
	}
	if c.told == nil {
		c.told = toldPool.Get().(*[]verdict)
	}
	*c.told = append(*c.told, verdict{r.n, r.err})
	putBuf(r.bp, r.b)
	r.b, r.bp, r.n = nil, nil, nil
	c.unlistAsyncLocked(r)
	if r.state != wAbandoned {
		putReq(r)
	}
}

// verdict is a notifier's verdict, told once qmu is released.
type verdict struct {
	n   iq.Notifier
	err error
}

var toldPool = sync.Pool{New: func() any { return new([]verdict) }}

// qunlock releases qmu, then tells the notifiers whose verdicts were
// given under it.
func (c *Conn) qunlock() {
	told := c.told
	c.told = nil
	c.qmu.Unlock()
	if told != nil {
		tell(told)
	}
}

// qunlockDetached is qunlock for a goroutine that must not run a
// program's code now: one holding the write lock (a notifier that writes
// on this Conn would wait for it), or closing the stream (one that closes
// it would wait for itself). The notifiers are told on a goroutine of
// their own.
func (c *Conn) qunlockDetached() {
	told := c.told
	c.told = nil
	c.qmu.Unlock()
	if told != nil {
		go tell(told)
	}
}

func tell(told *[]verdict) {
	for i, v := range *told {
		v.n.Sent(v.err)
		(*told)[i] = verdict{}
	}
	*told = (*told)[:0]
	toldPool.Put(told)
}

// yieldThenLead writes b, holding the free lock it just took, on a busy
// stream: it first lets the goroutines ready to run do so (the callers
// and handlers woken by the read loop, which send next), so that their
// stanzas queue behind the lock and go out in the same Write as b. Under
// load that turns one Write, one system call and one wake of the peer's
// reader per stanza into one per batch. On a stream that turned quiet,
// the yield finds nobody, b goes out alone, and the stream is no longer
// busy: sequential traffic does not yield.
func (c *Conn) yieldThenLead(ctx context.Context, b []byte) error {
	runtime.Gosched()
	r := wreqPool.Get().(*wreq)
	r.b, r.ctx, r.state, r.err = b, ctx, wLead, nil
	return c.lead(r)
}

// writeAlone writes b from its own buffer, holding the lock, then hands
// the lock on. Its caller has just found ctx not ended (ctxEndErr), with
// nothing between that check and this write that could wait: each check
// reads the clock and takes the context's lock, and a stanza passes here
// once per send.
func (c *Conn) writeAlone(ctx context.Context, b []byte) error {
	if c.isClosing() {
		c.handoff()
		return c.closedErr()
	}
	if c.noCut && ctx.Done() != nil {
		return c.writeAloneUncut(ctx, b)
	}
	n, err := c.watchedWrite(ctx, b, 0)
	c.wrote()
	if err != nil && isTimeout(err) && !c.noCut && n > 0 && n < len(b) {
		// ctx ended with part of the stanza on the wire. Cutting it short
		// would break the stream for every other request, so the rest goes
		// out in the background, still under the lock, and the caller
		// learns at once that its context ended.
		rest := append([]byte(nil), b[n:]...)
		go c.finishTail(rest, nil)
		return fmt.Errorf("stream: transport: %w", ctxErr(ctx, err))
	}
	if err != nil {
		err = ctxErr(ctx, err)
		if !isTimeout(err) || c.noCut {
			// A partial stanza cannot be taken back: the stream is broken.
			// So is a transport that a timeout breaks (cutIsFatal); the
			// Conn set no deadline on it, its owner did.
			err = fmt.Errorf("stream: transport: %w", err)
			c.breakStream(err)
			c.handoff()
			return closedBy(err)
		}
		c.handoff()
		return fmt.Errorf("stream: transport: %w", err)
	}
	c.handoff()
	return nil
}

// writeAloneUncut writes b, holding the lock, on a transport that a
// write cut short would break (see cutIsFatal): the Write is made by a
// goroutine of its own, which settles it and hands the lock on, while the
// sender waits for its verdict or for ctx to end. Its sender so learns at
// once that ctx ended, as on any transport with write deadlines, and the
// Write, never cut short, goes on in the background: the stanza may still
// be written whole, as one cut short elsewhere is finished.
func (c *Conn) writeAloneUncut(ctx context.Context, b []byte) error {
	// Copied into the lock holder's buffer: the sender may return, and
	// its buffer go back to its owner, before the Write is over.
	buf := append(c.wbuf[:0], b...)
	r := wreqPool.Get().(*wreq)
	r.ctx, r.state, r.gen, r.end, r.err = ctx, wWriting, 0, len(buf), nil
	c.detach(append(c.batch[:0], r), buf)
	return c.await(r)
}

// detach hands the lock, and the Write of buf (the bytes of batch), to a
// goroutine of its own: see writeDetached.
func (c *Conn) detach(batch []*wreq, buf []byte) {
	c.detached, c.detachedBuf = batch, buf
	go c.writeDetachedFn()
}

// writeDetached writes the batch detach left, holding the lock, with no
// deadline, then gives every stanza of it its verdict and hands the lock
// on (see settle). It runs in a goroutine of its own on a transport that
// a write cut short would break, so that no sender waits on it past its
// context.
func (c *Conn) writeDetached() {
	batch, buf := c.detached, c.detachedBuf
	c.detached, c.detachedBuf = nil, nil
	n, err := c.rwc.Write(buf)
	c.wrote()
	c.settle(nil, batch, buf, n, err)
}

// finishTail writes the rest of a stanza cut short, holding the lock and
// with no deadline, then tells r (nil when its sender has returned) and
// hands the lock on.
func (c *Conn) finishTail(rest []byte, r *wreq) {
	var err error
	if _, werr := c.rwc.Write(rest); werr != nil {
		err = fmt.Errorf("stream: transport: %w", werr)
		c.breakStream(err)
		err = closedBy(err)
	}
	c.wrote()
	c.qmu.Lock()
	if r != nil && r.state == wFinishing {
		r.state, r.err = wDone, err
		c.tellLocked(r)
	}
	c.handoffLocked()
	c.qunlock()
}

// await waits for r's verdict, or for the lock, or for r's context to end.
func (c *Conn) await(r *wreq) error {
	select {
	case lead := <-r.sig:
		return c.verdict(r, lead)
	case <-r.ctx.Done():
	}
	c.qmu.Lock()
	switch r.state {
	case wQueued:
		r.state = wAbandoned
		c.qn--
		c.roomLocked()
		c.qunlock()
		return r.ctx.Err()
	case wWriting:
		// Its batch is on its way: cut the write short where the
		// transport allows (not where that would break it: see
		// cutIsFatal), for the peer may not be reading. The stanza may yet
		// be written whole; the sender cannot wait to know.
		gen := r.gen
		r.state = wAbandoned
		c.qunlock()
		c.interruptGen(gen)
		return fmt.Errorf("stream: transport: %w", r.ctx.Err())
	case wFinishing:
		r.state = wAbandoned
		c.qunlock()
		return fmt.Errorf("stream: transport: %w", r.ctx.Err())
	}
	c.qunlock() // wLead or wDone: the signal is in r.sig
	return c.verdict(r, <-r.sig)
}

func (c *Conn) verdict(r *wreq, lead bool) error {
	if lead {
		return c.lead(r)
	}
	err := r.err
	putReq(r)
	return err
}

// lead writes, holding the lock it was handed, self's stanza and those
// queued after it, in one Write.
func (c *Conn) lead(self *wreq) error {
	ctx := self.ctx
	c.qmu.Lock()
	if c.isClosing() {
		c.handoffLocked() // fails the queue and releases the lock
		c.qunlock()
		putReq(self)
		return c.closedErr()
	}
	if err := ctxEndErr(ctx); err != nil {
		c.handoffLocked()
		c.qunlock()
		putReq(self)
		return err
	}
	var next *wreq
	for _, r := range c.q[c.qhead:] {
		if r.state == wQueued {
			next = r
			break
		}
	}
	if next == nil || len(self.b)+len(next.b) > maxBatch {
		// Nothing to join it: its own bytes, as they are.
		if next == nil {
			c.busy.Add(-1)
		}
		c.qunlock()
		b := self.b
		putReq(self)
		return c.writeAlone(ctx, b)
	}
	c.wgen++
	gen := c.wgen
	batch := append(c.batch[:0], self)
	buf := append(c.wbuf[:0], self.b...)
	self.state, self.gen, self.end = wWriting, gen, len(buf)
	now := time.Now() // once for the batch, not once per stanza
	for c.qhead < len(c.q) {
		r := c.q[c.qhead]
		if r.state == wQueued && ctxEndedAt(r.ctx, now) {
			// Its context ended while it queued, and its sender has yet
			// to see it: nothing of it is written (its sender could no
			// longer learn that it was).
			c.qn--
			r.state, r.err = wDone, queuedCtxErr(r.ctx)
			c.tellLocked(r)
			c.q[c.qhead] = nil
			c.qhead++
			continue
		}
		if r.state == wQueued {
			if len(buf)+len(r.b) > maxBatch {
				break
			}
			c.qn--
			r.state, r.gen = wWriting, gen
			// Copied under qmu: once out of wQueued, a sender whose context
			// ends returns, and its buffer goes back to its owner.
			buf = append(buf, r.b...)
			r.end = len(buf)
			batch = append(batch, r)
		}
		c.q[c.qhead] = nil
		c.qhead++
	}
	if c.qhead == len(c.q) {
		c.q, c.qhead = c.q[:0], 0
	}
	c.roomLocked()
	c.busy.Store(busyYields)
	if !c.noCut {
		// Named the write under way before a stanza of it is seen as
		// being written (wWriting, under qmu): one whose context ends
		// from now on cuts this write, even before it begins.
		c.dmu.Lock()
		c.curGen = gen
		c.dmu.Unlock()
	}
	c.qunlockDetached() // holding the write lock

	if c.noCut && ctx.Done() != nil {
		// The Write cannot be cut short when self's context ends (see
		// writeAloneUncut): it goes on without self's sender, who then
		// waits as any other stanza of the batch does.
		c.detach(batch, buf)
		return c.await(self)
	}
	n, err := c.watchedWrite(ctx, buf, gen)
	c.wrote()
	selfErr, wait := c.settle(self, batch, buf, n, err)
	if wait {
		return c.await(self)
	}
	putReq(self)
	return selfErr
}

// Each stanza of a batch gets one of these once the Write is over.
const (
	actDone    = iota // its verdict is its err
	actFinish         // cut short: its rest goes out, then its verdict
	actRequeue        // not begun, its context alive: back to the queue
)

// settle gives every stanza of a batch its verdict once the Write is over
// (n bytes of buf written, err), and hands the lock on: to a goroutine
// that finishes a stanza cut short, or to the head of the queue. It
// returns self's verdict, or wait when self has yet to learn it (cut
// short, or back in the queue); self is nil when the Write was made for
// the batch by writeDetached, and every stanza's sender waits in await.
func (c *Conn) settle(self *wreq, batch []*wreq, buf []byte, n int, err error) (selfErr error, wait bool) {
	// On a transport that a write cut short breaks (cutIsFatal), a
	// timeout, which only its owner's deadline can cause, breaks it too.
	timeout := err != nil && isTimeout(err) && !c.noCut
	var broken error
	if err != nil && !timeout {
		// A partial stanza cannot be taken back: the stream is broken.
		broken = fmt.Errorf("stream: transport: %w", err)
		c.breakStream(broken)
	}
	// Under qmu from here: a sender whose context ends marks its stanza
	// abandoned under it and returns, and its context, which may be
	// recycled then (a Caller's are), is not looked at again.
	c.qmu.Lock()
	ended := func(r *wreq) bool { return r.state == wAbandoned || ctxEnded(r.ctx) }
	// A timeout some stanza's context explains (it ended, and its sender,
	// or the write's own watch, cut the write short) leaves the others of
	// the batch free to go on; one nobody explains is the transport's, and
	// fails them, as it fails a stanza written alone.
	explained := false
	if timeout {
		for _, r := range batch {
			if ended(r) {
				explained = true
				break
			}
		}
	}
	var tail *wreq
	acts := c.acts[:0]
	start := 0
	for _, r := range batch {
		act := actDone
		switch {
		case r.state == wAbandoned:
			if broken == nil && start < n && n < r.end {
				tail = r // its rest still goes out
			}
		case r.end <= n:
			r.err = nil
		case broken != nil:
			r.err = closedBy(broken)
		case start < n:
			tail = r
			if ctxEnded(r.ctx) {
				r.err = fmt.Errorf("stream: transport: %w", ctxErr(r.ctx, err))
			} else {
				act = actFinish
			}
		case ctxEnded(r.ctx):
			r.err = fmt.Errorf("stream: transport: %w", ctxErr(r.ctx, err))
		case explained:
			act = actRequeue
		default:
			r.err = fmt.Errorf("stream: transport: %w", err)
		}
		acts = append(acts, int8(act))
		start = r.end
	}

	// What finishing the stanza cut short needs is taken now: a sender
	// told its verdict below puts its request back in the pool, shared by
	// every Conn, where another sender may take it and set its fields.
	var rest []byte
	if tail != nil {
		rest = buf[n:tail.end]
	}
	var tailReq *wreq
	var requeue []*wreq
	for i, r := range batch {
		if r != self && r.state == wAbandoned {
			continue // its sender returned
		}
		switch acts[i] {
		case actDone:
			r.state = wDone
			if r == self {
				selfErr = r.err
			} else {
				c.tellLocked(r)
			}
		case actFinish:
			r.state = wFinishing
			tailReq = r // the tail: finishTail tells it
			if r == self {
				wait = true
			}
		case actRequeue:
			requeue = append(requeue, r)
			if r == self {
				wait = true
			}
		}
	}
	if len(requeue) > 0 {
		c.requeueLocked(requeue)
	}
	// The batch's buffers are the lock holder's: kept for the next batch
	// before the lock is handed on. (rest stays valid: the lock, and so
	// the buffer, stays with finishTail until it has written it.)
	clear(batch)
	c.batch, c.acts = batch[:0], acts[:0]
	if cap(buf) <= 2*maxBatch {
		c.wbuf = buf[:0]
	} else {
		c.wbuf = nil
	}
	if tail != nil {
		// The lock goes to finishTail before any notifier runs: one that
		// writes on this Conn waits for it.
		go c.finishTail(rest, tailReq)
		c.qunlock()
		return selfErr, wait
	}
	c.handoffLocked()
	if self != nil && self.state == wLead {
		// The lock went back to self, whose stanza was requeued at the
		// head: this goroutine holds it until it leads again, so a
		// notifier that writes on this Conn, or closes it, must not run
		// here (see qunlockDetached).
		c.qunlockDetached()
		return selfErr, wait
	}
	c.qunlock()
	return selfErr, wait
}

// queuedCtxErr is the error of a stanza whose context ended before its
// write began: the context's, or DeadlineExceeded when only its deadline
// has passed so far.
func queuedCtxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return context.DeadlineExceeded
}

// ctxEndErr is ctx's error, or context.DeadlineExceeded when its deadline
// has passed though its timer has yet to fire (see ctxEnded): a stanza is
// never written past its deadline, whatever the lag of the timer that
// ends its context.
func ctxEndErr(ctx context.Context) error {
	if ctxEnded(ctx) {
		return queuedCtxErr(ctx)
	}
	return nil
}

// endedCtx is a context that tells at once whether it has ended or its
// deadline has passed, reading the clock at most once: the contexts a
// Caller and a Callee give their Sender are.
type endedCtx interface {
	EndedOrExpired() bool
}

// ctxEnded reports whether ctx has ended, or its deadline has passed (the
// transport's timer may fire a moment before the context's). It is
// ctxEndedAt(ctx, time.Now()) with the clock read only when ctx has a
// deadline, and then only its monotonic part (time.Until): this runs a few
// times per stanza, and a full time.Now costs twice a monotonic read.
func ctxEnded(ctx context.Context) bool {
	if e, ok := ctx.(endedCtx); ok {
		return e.EndedOrExpired()
	}
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && time.Until(d) <= 0
}

// ctxEndedAt is ctxEnded with the clock read by the caller.
func ctxEndedAt(ctx context.Context, now time.Time) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !now.Before(d)
}

// pushLocked appends r to the queue. A full slice is compacted first
// when at least half of it is stanzas their senders abandoned (they stay
// in it until the head reaches them), so that behind a write nothing cuts
// the senders that give up do not grow it without bound: it holds at most
// about twice the stanzas queued.
func (c *Conn) pushLocked(r *wreq) {
	if len(c.q) == cap(c.q) && len(c.q)-c.qhead >= 2*c.qn && len(c.q) > 0 {
		k := 0
		for _, x := range c.q[c.qhead:] {
			if x.state == wQueued {
				c.q[k] = x
				k++
			}
		}
		clear(c.q[k:])
		c.q, c.qhead = c.q[:k], 0
	} else if c.qhead > 0 && len(c.q) == cap(c.q) {
		k := copy(c.q, c.q[c.qhead:])
		clear(c.q[k:])
		c.q, c.qhead = c.q[:k], 0
	}
	c.q = append(c.q, r)
	c.qn++
	c.qpeak = max(c.qpeak, c.qn)
}

// requeueLocked puts rs back at the head of the queue, in order, or fails
// them once the stream is closing.
func (c *Conn) requeueLocked(rs []*wreq) {
	if c.isClosing() {
		for _, r := range rs {
			r.state, r.err = wDone, c.closedErr()
			c.tellLocked(r)
		}
		return
	}
	q := make([]*wreq, 0, len(rs)+len(c.q)-c.qhead)
	for _, r := range rs {
		r.state = wQueued
		q = append(q, r)
	}
	q = append(q, c.q[c.qhead:]...)
	c.q, c.qhead = q, 0
	c.qn += len(rs)
}

// handoff hands the lock to the head of the queue, or releases it.
func (c *Conn) handoff() {
	c.qmu.Lock()
	c.handoffLocked()
	c.qunlock()
}

func (c *Conn) handoffLocked() {
	if c.isClosing() {
		c.failQueueLocked()
	}
	for c.qhead < len(c.q) {
		r := c.q[c.qhead]
		c.q[c.qhead] = nil
		c.qhead++
		if r.state != wQueued {
			continue // abandoned
		}
		c.qn--
		if c.qhead == len(c.q) {
			c.q, c.qhead = c.q[:0], 0
		}
		c.roomLocked()
		r.state = wLead
		if r.n != nil {
			// Its context is lead's to heed from here, as a waiting
			// sender's is.
			c.unlistAsyncLocked(r)
			go c.leadAsync(r)
		} else {
			r.sig <- true
		}
		if c.qn > 0 {
			c.busy.Store(busyYields) // r's batch will carry more than r
		}
		return
	}
	c.q, c.qhead = c.q[:0], 0
	<-c.wsem
}

// failQueueLocked fails every queued stanza, once the stream is closing:
// none of them was begun.
func (c *Conn) failQueueLocked() {
	for i := c.qhead; i < len(c.q); i++ {
		r := c.q[i]
		c.q[i] = nil
		if r.state == wQueued {
			r.state, r.err = wDone, c.closedErr()
			c.tellLocked(r)
		}
	}
	c.q, c.qhead, c.qn = c.q[:0], 0, 0
	c.roomLocked()
}

// failQueue is failQueueLocked for the ends of a stream.
func (c *Conn) failQueue() {
	c.qmu.Lock()
	c.failQueueLocked()
	c.qunlockDetached() // in the stream's end (closeOnce), or with the write lock held
}

// roomLocked wakes the senders waiting for room in the queue, if there is.
func (c *Conn) roomLocked() {
	if c.qspace != nil && c.qn < c.qmax {
		close(c.qspace)
		c.qspace = nil
	}
}

// interruptGen ends the write under way, by a past write deadline, if it
// is write gen (a batch whose sender's context ended), on a transport
// that survives it.
func (c *Conn) interruptGen(gen uint64) {
	if c.noCut {
		return
	}
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if gen == 0 || c.curGen != gen {
		return
	}
	if nc, ok := c.rwc.(interface{ SetWriteDeadline(time.Time) error }); ok {
		_ = nc.SetWriteDeadline(time.Unix(1, 0))
		c.interrupted = true
	}
}
