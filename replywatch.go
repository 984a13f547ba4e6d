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
// comes before the time it is set for, and otherwise left alone: every
// reply's deadline is the same timeout after its reply was due, so the
// timer, once set, fires about once per timeout while replies are
// written, and finds nothing to end unless a write is stuck.
//
// The contexts watched are in a binary min-heap by deadline, each knowing
// its index, as a Caller's pending requests are: adding and removing one
// is O(log n), and a fire ends the contexts due without looking at the
// others, however many replies are stuck at once. It is the Caller's heap
// (deadline.go) written again for another type: one generic heap for both
// cost the Caller's bookkeeping 5-7 % (BenchmarkCaller in bench/, six
// interleaved runs), its calls to the items' methods going through the
// instantiation's dictionary, on a path every request takes. The watch is allocated
// apart from its Callee, so that a timer still set when the Callee is
// dropped keeps only the watch, empty by then, until it fires.
type replyWatch struct {
	mu    sync.Mutex
	heap  []*replyCtx
	timer *time.Timer
	at    int64 // when timer fires, since callEpoch, if set
	set   bool
}

// add watches r until remove, or until its deadline, when fire ends it.
// r.mu is held: the order is r.mu, then w.mu.
func (w *replyWatch) add(r *replyCtx) {
	w.mu.Lock()
	r.index = len(w.heap)
	w.heap = append(w.heap, r)
	w.up(r.index)
	if !w.set || r.deadline < w.at {
		w.setLocked(r.deadline)
	}
	w.mu.Unlock()
}

// remove stops watching r, if fire has not taken it already.
func (w *replyWatch) remove(r *replyCtx) {
	w.mu.Lock()
	if r.index >= 0 {
		w.removeLocked(r)
	}
	w.mu.Unlock()
}

// removeLocked takes r, which is in the heap, out of it. The timer is
// left as it is: firing early only finds nothing due.
func (w *replyWatch) removeLocked(r *replyCtx) {
	i, last := r.index, len(w.heap)-1
	if i != last {
		w.swap(i, last)
	}
	w.heap[last] = nil
	w.heap = w.heap[:last]
	r.index = -1
	if i != last && !w.down(i) {
		w.up(i)
	}
	if cap(w.heap) > 1024 && len(w.heap) < cap(w.heap)/4 {
		w.heap = append([]*replyCtx(nil), w.heap...)
	}
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
	for len(w.heap) > 0 && w.heap[0].deadline <= now {
		r := w.heap[0]
		w.removeLocked(r)
		due = append(due, r)
	}
	if len(w.heap) > 0 {
		w.setLocked(w.heap[0].deadline)
	}
	w.mu.Unlock()
	for _, r := range due {
		r.expire()
	}
}

func (w *replyWatch) swap(i, j int) {
	h := w.heap
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (w *replyWatch) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if w.heap[j].deadline >= w.heap[i].deadline {
			break
		}
		w.swap(i, j)
		j = i
	}
}

// down moves the context at i0 down to its place, and reports whether it
// moved.
func (w *replyWatch) down(i0 int) bool {
	i, n := i0, len(w.heap)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && w.heap[r].deadline < w.heap[l].deadline {
			j = r
		}
		if w.heap[j].deadline >= w.heap[i].deadline {
			break
		}
		w.swap(i, j)
		i = j
	}
	return i > i0
}
