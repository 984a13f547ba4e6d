package iq

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
)

// The contexts of handlers started by Receive.
//
// A handler's context is derived from the context given to Receive (the
// serve context), and must end when it ends. context.WithCancelCause on
// the serve context would do that by making each handler's context a
// child of it: an insertion into, and a removal from, the serve
// context's map of children, under its lock, for every request (about
// 1,000 instructions, and a lock that every handler of a busy stream
// takes). A serve context rarely ends: a stream's lives as long as the
// stream. So the Callee watches each serve context once
// (context.AfterFunc), and its handlers' contexts derive from the serve
// context without its cancellation (a detachedCtx, which is what
// context.WithoutCancel makes), which the watch supplies: when the serve context ends, the watch cancels every
// running handler registered with it, with the serve context's cause.
//
// What a handler sees is the same, but for one thing: its context is
// cancelled by a goroutine that starts once the serve context has ended,
// a moment after, not during the serve context's cancel. (Its Err is then
// context.Canceled, as a child's of a serve context with no deadline is;
// its cause, the serve context's.) A serve context with a deadline is
// not watched: its handlers' contexts derive from it as they always did,
// so that they report its deadline and end with context.DeadlineExceeded
// when it passes. Neither is one that cannot end (Done returns nil),
// which costs nothing to derive from.

// serveWatch is the watch of one serve context, found by its Done
// channel: contexts that share one (values added to the same context,
// say) end together, with the same cause.
type serveWatch struct {
	done <-chan struct{}
	ctx  context.Context // the one of them watched (AfterFunc), and asked for the cause
	stop func() bool     // stops the watch's context.AfterFunc
	// recent are the ones of them handlers' contexts were derived from
	// lately, with their values, which the next handler's context
	// derives from too when it comes from the same context: read without
	// the lock, they spare the requests of a stream (or of a few, as a
	// pool's streams share a watch) an allocation each. The reaper
	// clears those no handler used for a period, so that a stream gone
	// is let go of. latest is the one last stored.
	recent [recentCtxs]atomic.Pointer[detachedCtx]
	next   int // the slot of recent to store in next
	latest *detachedCtx
	refs   int  // running handlers registered with it
	used   bool // a handler registered since the reaper's last look
	gone   bool // no longer in watches: ended, evicted or closed
}

// detachedCtx is a serve context without its cancellation, the parent
// of its handlers' contexts: it carries the serve context's values, no
// deadline (only a serve context with none is watched), and never ends,
// as context.WithoutCancel's would; unlike that one, it lets holds see
// which context it was made from.
type detachedCtx struct {
	ctx     context.Context
	pointer bool        // ctx is a pointer, which holds may compare
	hit     atomic.Bool // found in a watch's recent since the reaper's last look
}

// recentCtxs is how many serve contexts a watch keeps ready for their
// handlers' contexts to derive from (serveWatch.recent).
const recentCtxs = 4

func newDetached(ctx context.Context) *detachedCtx {
	// Only a pointer is compared (holds): a value of another type may
	// panic when compared, even one of a comparable type.
	return &detachedCtx{ctx: ctx, pointer: reflect.TypeOf(ctx).Kind() == reflect.Pointer}
}

// holds reports whether d was made from ctx.
func (d *detachedCtx) holds(ctx context.Context) bool {
	return d != nil && d.pointer && d.ctx == ctx
}

// Deadline implements context.Context: none.
func (d *detachedCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done implements context.Context: nil, it never ends.
func (d *detachedCtx) Done() <-chan struct{} { return nil }

// Err implements context.Context: nil, it never ends.
func (d *detachedCtx) Err() error { return nil }

// Value implements context.Context: the serve context's values.
func (d *detachedCtx) Value(key any) any { return d.ctx.Value(key) }

// String names d as context.WithoutCancel's context names itself.
func (d *detachedCtx) String() string {
	if s, ok := d.ctx.(fmt.Stringer); ok {
		return s.String() + ".WithoutCancel"
	}
	return reflect.TypeOf(d.ctx).String() + ".WithoutCancel"
}

// maxWatches is how many watches a Callee keeps before it stops those
// with no running handler, as it starts another. The reaper stops them
// after a period or two unused anyway: the cap is for a burst of serve
// contexts, a new one for every request, say. It is high enough for the
// serve contexts of many streams served at once (each of which has one,
// or shares one), which would otherwise stop each other's watches.
const maxWatches = 256

// handlerSlot is a running handler's entry in Callee.running.
type handlerSlot struct {
	cancel context.CancelCauseFunc // nil when the slot is free
	watch  *serveWatch             // nil when its context is not watched
}

// handlerContext returns the context of a handler started by Receive:
// derived from ctx; cancelled when ctx ends, with ctx's cause; with
// ErrClosed as its cause when the Callee closes; and with
// context.Canceled by stopHandler(cancel, id), which the caller calls
// once the handler has returned.
func (c *Callee) handlerContext(ctx context.Context) (context.Context, context.CancelCauseFunc, uint32) {
	done := ctx.Done()
	watched := done != nil
	if watched {
		_, hasDeadline := ctx.Deadline()
		watched = !hasDeadline
	}
	parent := ctx
	var d *detachedCtx
	if watched {
		// The serve context without its cancellation: one that a
		// handler's context came from lately when ctx is the same, as a
		// stream's serve loop gives the same for every request; else a
		// new one.
		if w := c.lastWatch.Load(); w != nil && w.done == done {
			d = w.find(ctx)
		}
		if d == nil {
			d = newDetached(ctx)
		}
		parent = d
	}
	hctx, cancel := context.WithCancelCause(parent)
	c.hmu.Lock()
	if c.closed {
		c.hmu.Unlock()
		if watched && ctx.Err() != nil {
			// The serve context ended first: its cause, as a child born
			// of it would have.
			cancel(serveCause(ctx))
		} else {
			cancel(ErrClosed)
		}
		return hctx, cancel, noRun
	}
	var w *serveWatch
	if watched {
		if w = c.watchLocked(ctx, done, d); w != nil {
			if w.refs == 0 {
				c.idleWatches--
			}
			w.refs++
			w.used = true
		}
		if ctx.Err() != nil {
			// ctx has ended already, its watch's function perhaps still
			// on its way: ended at once, as a child born of ctx would be.
			cancel(serveCause(ctx))
		}
	}
	s := handlerSlot{cancel, w}
	var id uint32
	if n := len(c.free); n > 0 {
		id = c.free[n-1]
		c.free = c.free[:n-1]
		c.running[id] = s
	} else {
		id = uint32(len(c.running))
		c.running = append(c.running, s)
	}
	c.hmu.Unlock()
	return hctx, cancel, id
}

// noRun is the id of a handler context that was never registered in
// running, as the Callee had closed.
const noRun = ^uint32(0)

// stopHandler ends a handler's context once the handler has returned.
func (c *Callee) stopHandler(cancel context.CancelCauseFunc, id uint32) {
	if id != noRun {
		c.hmu.Lock()
		if !c.closed { // Close dropped every slot
			if w := c.running[id].watch; w != nil {
				if w.refs--; w.refs == 0 && !w.gone {
					c.idleWatches++
				}
			}
			c.running[id] = handlerSlot{}
			c.free = append(c.free, id)
		}
		c.hmu.Unlock()
	}
	cancel(context.Canceled)
}

// watchLocked returns the watch of the serve context ctx, whose Done
// channel is done, starting one if there is none, and keeps d, ctx
// without its cancellation, as its latest; or returns nil if ctx has ended
// and no watch is left to cancel its handlers. c.hmu is held.
func (c *Callee) watchLocked(ctx context.Context, done <-chan struct{}, d *detachedCtx) *serveWatch {
	w := c.lastWatch.Load()
	if w == nil || w.done != done || w.gone {
		if w = c.watches[done]; w != nil {
			c.lastWatch.Store(w)
		}
	}
	if w != nil {
		w.keep(d)
		return w
	}
	if ctx.Err() != nil {
		return nil
	}
	if c.watches == nil {
		c.watches = make(map[<-chan struct{}]*serveWatch)
	}
	if len(c.watches) >= maxWatches && c.idleWatches > 0 {
		// Without an idle one, the map grows, by one per running
		// handler at most: WithMaxInFlight bounds it.
		c.evictIdleWatchesLocked(false)
	}
	w = &serveWatch{done: done}
	c.idleWatches++ // until the handler that made it registers
	w.keep(d)
	c.startWatchLocked(w, ctx)
	c.watches[done] = w
	c.lastWatch.Store(w)
	c.watching.Store(true)
	// The reaper stops the watch once no handler has used it for a
	// while, so that a Callee no longer served lets go of ctx, which
	// otherwise holds it through the watch until ctx ends.
	if !c.reaping.Load() && c.reaping.CompareAndSwap(false, true) {
		c.reaper.Reset(workerIdle)
	}
	return w
}

// find returns the one of w's recent that was made from ctx, or nil.
func (w *serveWatch) find(ctx context.Context) *detachedCtx {
	for i := range w.recent {
		if r := w.recent[i].Load(); r.holds(ctx) {
			if !r.hit.Load() {
				r.hit.Store(true)
			}
			return r
		}
	}
	return nil
}

// keep makes d, which a handler's context has just derived from, w's
// latest, and one of its recent. c.hmu is held.
func (w *serveWatch) keep(d *detachedCtx) {
	if d == w.latest {
		return
	}
	w.latest = d
	for i := range w.recent {
		if w.recent[i].Load() == d {
			return
		}
	}
	d.hit.Store(true)
	w.recent[w.next].Store(d)
	w.next = (w.next + 1) % recentCtxs
}

// startWatchLocked watches ctx, one of the contexts of w. c.hmu is held.
func (c *Callee) startWatchLocked(w *serveWatch, ctx context.Context) {
	w.ctx = ctx
	// The stop function is set before the lock is let go, and the
	// function runs on a goroutine of its own, which takes the lock: it
	// sees the watch whole.
	w.stop = context.AfterFunc(ctx, func() { c.serveEnded(w) })
}

// serveEnded cancels the handlers registered with w, whose serve context
// has ended, with its cause, and forgets w.
func (c *Callee) serveEnded(w *serveWatch) {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	if w.gone {
		// Evicted with no handler left, or the Callee closed: none to
		// cancel. A watch evicted is never registered with again.
		return
	}
	c.dropWatchLocked(w)
	if w.refs == 0 {
		return
	}
	cause := serveCause(w.ctx)
	for _, s := range c.running {
		if s.watch == w {
			s.cancel(cause)
		}
	}
}

// serveCause is the cause a handler's context is cancelled with when its
// serve context ctx has ended: ctx's own.
func serveCause(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return context.Canceled // a Context that breaks its contract
}

// dropWatchLocked forgets w. c.hmu is held.
func (c *Callee) dropWatchLocked(w *serveWatch) {
	if w.refs == 0 {
		c.idleWatches--
	}
	w.gone = true
	delete(c.watches, w.done)
	if c.lastWatch.Load() == w {
		c.lastWatch.Store(nil)
	}
	if len(c.watches) == 0 {
		c.watching.Store(false)
	}
}

// evictIdleWatchesLocked stops the watches that no running handler is
// registered with: with stale, only those that none has been registered
// with since the last call with stale (the reaper's). With stale too, a
// watch of a context that handlers no longer come from (an older
// stream's, whose serve context added values to a longer-lived one) is
// moved to the one they come from, so that the older is let go of.
// c.hmu is held.
func (c *Callee) evictIdleWatchesLocked(stale bool) {
	for _, w := range c.watches {
		if w.refs == 0 && (!stale || !w.used) {
			w.stop()
			c.dropWatchLocked(w)
			continue
		}
		if !stale {
			continue
		}
		w.used = false
		for i := range w.recent {
			if r := w.recent[i].Load(); r != nil && r != w.latest && !r.hit.Swap(false) {
				w.recent[i].Store(nil)
			}
		}
		if !w.latest.holds(w.ctx) && w.stop() {
			c.startWatchLocked(w, w.latest.ctx)
		}
	}
}

// reapWatches stops the watches that no handler has used for a reaper's
// period, so that a Callee no longer served lets go of its serve
// contexts, and they of it. It reports whether any watch is left.
func (c *Callee) reapWatches() bool {
	if !c.watching.Load() {
		return false
	}
	c.hmu.Lock()
	c.evictIdleWatchesLocked(true)
	left := len(c.watches) > 0
	c.hmu.Unlock()
	return left
}

// cancelRunningLocked cancels the context of every running handler as
// the Callee closes, with ErrClosed as its cause, or with its serve
// context's if that has already ended (its watch may not have run yet),
// and stops every watch. c.hmu is held.
func (c *Callee) cancelRunningLocked() {
	for _, s := range c.running {
		if s.cancel == nil {
			continue
		}
		cause := error(ErrClosed)
		if s.watch != nil && s.watch.ctx.Err() != nil {
			cause = serveCause(s.watch.ctx)
		}
		s.cancel(cause)
	}
	for _, w := range c.watches {
		w.stop()
		c.dropWatchLocked(w)
	}
	c.running, c.free = nil, nil // no handler registers after closed
}

// handlerSlots is the part of a Callee that handlerContext keeps.
type handlerSlots struct {
	// The running handlers' contexts, so that Close can cancel them:
	// cheaper than a context.AfterFunc on base for each. A handler holds
	// a slot of running while it runs; freed slots are reused, last
	// freed first: a map's insertion and deletion cost more, and it keeps
	// its size after a burst just the same.
	hmu     sync.Mutex
	running []handlerSlot
	free    []uint32 // indices of the free slots of running
	closed  bool
	// The watches of serve contexts, by Done channel, and the one found
	// last, which spares the map's lookup, and the allocation of its
	// context without cancellation, while requests come from one. It is
	// read without the lock, for those two fields that never change.
	watches     map[<-chan struct{}]*serveWatch
	idleWatches int // those of watches with no running handler
	lastWatch   atomic.Pointer[serveWatch]
	watching    atomic.Bool // watches is not empty: the reaper looks at them
}
