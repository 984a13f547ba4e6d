package iq

import (
	"context"
	"sync"
	"sync/atomic"
)

// drainState lets Drain wait for the Callee's in-flight count to reach
// zero. The handlers' path pays one atomic load, and only when the count
// reaches zero: the channel is made and closed only while someone drains.
type drainState struct {
	waiters atomic.Int32 // goroutines inside Drain
	mu      sync.Mutex
	idle    chan struct{} // closed (and dropped) when the count reaches zero
}

// release ends one handler's (or one refused request's) share of the
// in-flight count, and wakes Drain when the count reaches zero.
func (c *Callee) release() {
	if c.inFlight.Add(-1) == 0 && c.drain.waiters.Load() != 0 {
		c.drain.mu.Lock()
		if c.drain.idle != nil {
			close(c.drain.idle)
			c.drain.idle = nil
		}
		c.drain.mu.Unlock()
	}
}

// Drain waits until no handler started by Receive is running, no request
// waits its turn in an ordered route's queue, and every handler's reply
// was written, or refused, by the Sender (for a reply an AsyncSender
// queued, its verdict counts, not SendIQAsync's return), or ctx ends, in
// which case it returns ctx's error. It returns nil at once when nothing
// is in flight.
//
// Drain neither stops new requests nor cancels running handlers: it is
// meant for the end of a stream, once nothing more is read (as package
// stream does when the peer closes its stream, to send the replies still
// due before closing its own), or after Close, whose cancellation the
// handlers are expected to heed. A Receive that keeps starting handlers
// may keep Drain waiting until ctx ends. Requests answered without a
// handler are sent before Receive returns, so Drain never waits for them.
// Any number of goroutines may drain at once.
func (c *Callee) Drain(ctx context.Context) error {
	if ctx == nil {
		panic("iq: Drain: nil context")
	}
	d := &c.drain
	// Registering before reading the count means that a release that
	// brings it to zero after the read sees a waiter, and closes the
	// channel taken before the read.
	d.waiters.Add(1)
	defer d.waiters.Add(-1)
	for {
		d.mu.Lock()
		if d.idle == nil {
			d.idle = make(chan struct{})
		}
		idle := d.idle
		d.mu.Unlock()
		if c.inFlight.Load() == 0 {
			return nil
		}
		select {
		case <-idle:
			// Zero was reached; a request may have started since: look again.
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
