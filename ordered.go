package iq

import (
	"context"
	"fmt"
	"sync"
)

// DefaultMaxQueued is how many requests may wait behind the one running
// in the queue of an ordered route (per sender with OrderedBySender, for
// the whole route with Ordered), until MaxQueued changes it. It is half
// of DefaultMaxInFlight, so that by default one sender's queue cannot
// take every handler slot.
const DefaultMaxQueued = 128

// OrderedBySender makes a route run the requests of one sender one at a
// time, in the order Receive was given them, while the requests of
// different senders run in parallel. A sender is the request's from,
// normalised as ParseJID does (so that Juliet@Example.com and
// juliet@example.com are one); a request with no from (from one's own
// server, on a client stream) is a sender of its own, and so is each
// from that does not parse, compared as it is. Full JIDs of one account
// are different senders. Order is kept within one route: a sender's
// requests to two ordered routes are in two queues.
//
// Use it where the protocol requires requests to be applied in the order
// they were sent, such as RFC 6121 roster pushes, or where a handler
// mutates state per sender. It is a route option, given where the route's
// own middleware is (Callee.Handle, Get and Set, HandleGet and HandleSet),
// in any place among them:
//
//	iq.HandleSet(c, rosterPush, iq.Allow(iq.OwnAccount(me)), iq.OrderedBySender())
//
// It has the Middleware type for that reason alone: registration takes it
// out of the chain, Callee.Use panics on it, and applied by hand to a
// Handler it returns one that calls it and orders nothing.
//
// Ordering concerns Receive alone: Reply runs the handler on its caller's
// goroutine, and orders what its caller orders. A request waiting for its
// turn holds one of the WithMaxInFlight slots from the moment it is
// received, so InFlight counts it, Drain waits for it, and the cap bounds
// the memory of all the queues together. At most MaxQueued requests
// (DefaultMaxQueued by default) wait behind the one running per sender;
// one more is answered wait/resource-constraint at once, as a request
// past WithMaxInFlight is. A sender with nothing queued costs nothing:
// no goroutine waits for it and no entry is kept for it.
//
// A handler that panics or calls runtime.Goexit is answered
// internal-server-error, as on any route, and the sender's next request
// runs. Close answers the requests still waiting cancel/service-unavailable
// instead of running them.
func OrderedBySender() Middleware {
	return routeOpt(func(rc *routeConfig) { rc.order = orderBySender })
}

// Ordered makes a route run its requests one at a time, in the order
// Receive was given them, whoever sent them: one queue for the whole
// route, bounded by MaxQueued. Everything OrderedBySender says holds for
// that one queue. Prefer OrderedBySender when only each sender's order
// matters: a slow request then delays no other sender's.
func Ordered() Middleware { return routeOpt(func(rc *routeConfig) { rc.order = orderRoute }) }

// MaxQueued sets how many requests may wait behind the one running in a
// queue of an ordered route (DefaultMaxQueued by default); a request past
// it is answered wait/resource-constraint at once. The requests waiting
// hold WithMaxInFlight slots too, so a bound past that cap does not
// matter. It goes with Ordered or OrderedBySender: registration panics
// when it comes without one. MaxQueued panics if n is negative; zero keeps
// the default.
func MaxQueued(n int) Middleware {
	if n < 0 {
		panic(fmt.Sprintf("iq: MaxQueued: negative count %d", n))
	}
	return routeOpt(func(rc *routeConfig) { rc.maxQueued, rc.maxSet = n, true })
}

type orderMode uint8

const (
	orderNone orderMode = iota
	orderRoute
	orderBySender
)

// routeConfig is what the route options of one registration set.
type routeConfig struct {
	order     orderMode
	maxQueued int
	maxSet    bool
}

// routeOpt returns a route option: a Middleware whose handler
// registration recognises and takes out of the chain.
func routeOpt(apply func(*routeConfig)) Middleware {
	return func(next Handler) Handler { return routeOption{next: next, apply: apply} }
}

// routeOption is the handler a route option returns: a mark for
// registration, which calls the next handler if it ever runs.
type routeOption struct {
	next  Handler
	apply func(*routeConfig)
}

func (o routeOption) HandleIQ(ctx context.Context, req *IQ) (*Element, error) {
	return o.next.HandleIQ(ctx, req)
}

// nopHandler is what Use gives each middleware once, to find route
// options among them.
var nopHandler = HandlerFunc(func(context.Context, *IQ) (*Element, error) { return nil, nil })

// isRouteOption reports whether m is one of the route options.
func isRouteOption(m Middleware) bool {
	_, ok := m(nopHandler).(routeOption)
	return ok
}

// routeHandler wraps h in a registration's middleware, the first
// outermost, and returns it with the orderer its route options ask for
// (nil for none). It panics, naming fn, on a nil middleware.
func routeHandler(fn string, h Handler, mw []Middleware) (Handler, *orderer) {
	var rc routeConfig
	for i := len(mw) - 1; i >= 0; i-- {
		if mw[i] == nil {
			panic("iq: " + fn + ": nil middleware")
		}
		next := mw[i](h)
		if o, ok := next.(routeOption); ok {
			o.apply(&rc)
			continue
		}
		h = next
	}
	if rc.order == orderNone {
		if rc.maxSet {
			panic("iq: " + fn + ": MaxQueued without Ordered or OrderedBySender")
		}
		return h, nil
	}
	o := &orderer{bySender: rc.order == orderBySender, max: DefaultMaxQueued}
	if rc.maxQueued > 0 {
		o.max = rc.maxQueued
	}
	return h, o
}

// orderer keeps the queues of one ordered route. A queue exists only
// while one of its requests is running: the worker that ran it takes the
// next, and removes the queue when none is left.
type orderer struct {
	bySender bool
	max      int // requests waiting per queue, the running one not counted

	mu     sync.Mutex
	route  *orderQueue               // the one queue, without bySender
	queues map[senderKey]*orderQueue // by sender, with bySender
}

// orderQueue is the requests of one sender (or of the route) waiting
// behind the one running.
type orderQueue struct {
	o       *orderer
	key     senderKey
	waiting []handlerJob // waiting[head:] in arrival order
	head    int
}

type enqueued uint8

const (
	runNow enqueued = iota // the queue was idle: run the job, then the queue
	queued                 // the job waits its turn
	full                   // refused: the queue is at its bound
)

// senderKey names a sender's queue: its address normalised, or, for a
// from that does not parse, the string as it is. The zero key is the
// sender with no from.
type senderKey struct {
	jid JID
	raw string
}

// keyOf returns the key of from's queue.
func keyOf(from string) senderKey {
	if from == "" {
		return senderKey{}
	}
	j, err := ParseJID(from)
	if err != nil {
		return senderKey{raw: from}
	}
	return senderKey{jid: j}
}

// enqueue puts job in its queue. When the queue was idle, job.q is set and
// the caller runs job and then the queue (Callee.runQueue).
func (o *orderer) enqueue(job *handlerJob) enqueued {
	var key senderKey
	if o.bySender {
		key = keyOf(job.req.From) // outside the lock: parsing is the costly part
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var q *orderQueue
	if o.bySender {
		q = o.queues[key]
	} else {
		q = o.route
	}
	if q == nil {
		q = &orderQueue{o: o, key: key}
		if o.bySender {
			if o.queues == nil {
				o.queues = make(map[senderKey]*orderQueue)
			}
			o.queues[key] = q
		} else {
			o.route = q
		}
		job.q = q
		return runNow
	}
	if len(q.waiting)-q.head >= o.max {
		return full
	}
	if q.head > 0 && len(q.waiting) == cap(q.waiting) {
		// Reuse the space of the requests taken, rather than grow.
		n := copy(q.waiting, q.waiting[q.head:])
		clear(q.waiting[n:])
		q.waiting, q.head = q.waiting[:n], 0
	}
	job.q = q
	q.waiting = append(q.waiting, *job)
	return queued
}

// next takes the request after the one that just ran, or, when none is
// waiting, removes the queue and reports false.
func (q *orderQueue) next() (handlerJob, bool) {
	o := q.o
	o.mu.Lock()
	defer o.mu.Unlock()
	if q.head == len(q.waiting) {
		if o.bySender {
			delete(o.queues, q.key)
		} else {
			o.route = nil
		}
		return handlerJob{}, false
	}
	job := q.waiting[q.head]
	q.waiting[q.head] = handlerJob{}
	q.head++
	if q.head == len(q.waiting) {
		q.waiting, q.head = q.waiting[:0], 0
	}
	return job, true
}

// flush takes every request waiting in o's queues, leaving each queue to
// the worker running its current request, which removes it.
func (o *orderer) flush() []handlerJob {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []handlerJob
	take := func(q *orderQueue) {
		if q == nil {
			return
		}
		out = append(out, q.waiting[q.head:]...)
		clear(q.waiting)
		q.waiting, q.head = q.waiting[:0], 0
	}
	take(o.route)
	for _, q := range o.queues {
		take(q)
	}
	return out
}

// runQueue runs the requests waiting in q, one after another, until none
// is left. After Close they are answered cancel/service-unavailable
// instead.
func (c *Callee) runQueue(q *orderQueue) {
	for {
		job, ok := q.next()
		if !ok {
			return
		}
		if c.base.Err() != nil {
			c.refuseClosed(job)
			continue
		}
		c.handle(job)
	}
}

// refuseClosed answers a request that waited for its turn until Close
// cancel/service-unavailable, and gives back its slot.
func (c *Callee) refuseClosed(job handlerJob) {
	c.sendThenRelease(job.ctx, job.req.ErrorReply(NewError(Cancel, ServiceUnavailable, "")))
}
