package iq

import (
	"sync"
	"time"
)

// replyWatch ends a Callee's reply contexts at their deadlines, with one
// timer for all of them rather than one per context. A Sender watches a
// reply's context (Done, AfterFunc) for as long as it writes the reply,
// a few microseconds as a rule; a timer of the context's own was set and
// stopped for each reply, two changes to the runtime's timer heap and a
// clock read. The watch's timer is set for the earliest deadline when one
// is added before it, and otherwise left alone: every reply's deadline
// is the same timeout after its reply was due, so the timer, once set,
// fires about once per timeout while replies are written, and finds what
// is still watched then (nothing, unless a write is stuck).
//
// The contexts watched are in a list in no order, linked through their
// prev and next fields, so that adding and removing one is constant time.
type replyWatch struct {
	mu    sync.Mutex
	list  *replyCtx
	timer *time.Timer
	at    int64 // when timer fires, since callEpoch, if set
	set   bool
}

// add watches r until remove, or until its deadline, when fire ends it.
// r.mu is held: the order is r.mu, then w.mu.
func (w *replyWatch) add(r *replyCtx) {
	w.mu.Lock()
	r.prev, r.next, r.listed = nil, w.list, true
	if w.list != nil {
		w.list.prev = r
	}
	w.list = r
	if !w.set || r.deadline < w.at {
		w.setLocked(r.deadline)
	}
	w.mu.Unlock()
}

// remove stops watching r, if fire has not taken it already.
func (w *replyWatch) remove(r *replyCtx) {
	w.mu.Lock()
	if r.listed {
		w.unlinkLocked(r)
	}
	w.mu.Unlock()
}

func (w *replyWatch) unlinkLocked(r *replyCtx) {
	if r.prev != nil {
		r.prev.next = r.next
	} else {
		w.list = r.next
	}
	if r.next != nil {
		r.next.prev = r.prev
	}
	r.prev, r.next, r.listed = nil, nil, false
}

// setLocked sets the timer for at, a time since callEpoch.
func (w *replyWatch) setLocked(at int64) {
	w.at, w.set = at, true
	if w.timer == nil {
		w.timer = time.AfterFunc(untilEpoch(at), w.fire)
	} else {
		w.timer.Reset(untilEpoch(at))
	}
}

// fire ends the contexts watched whose deadline has passed, and sets the
// timer for the earliest deadline among the rest. It ends them after
// releasing w.mu: ending one runs what was registered with its
// AfterFunc, which may take locks of its own (a stream's, to cut its
// write short), and the order is r.mu before w.mu.
func (w *replyWatch) fire() {
	var due []*replyCtx
	w.mu.Lock()
	now := int64(time.Since(callEpoch))
	w.set = false
	next, more := int64(0), false
	for r := w.list; r != nil; {
		after := r.next
		if r.deadline <= now {
			w.unlinkLocked(r)
			due = append(due, r)
		} else if !more || r.deadline < next {
			next, more = r.deadline, true
		}
		r = after
	}
	if more {
		w.setLocked(next)
	}
	w.mu.Unlock()
	for _, r := range due {
		r.expire()
	}
}
