package stream

import (
	"context"
	"errors"
	"time"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/internal/errs"
)

// peerCloseWait bounds how long Shutdown, once its closing tag is out,
// waits for the peer's before it closes the transport.
const peerCloseWait = 2 * time.Second

// errShutdown is why a stream that Shutdown ended is closed: it wraps
// ErrClosed, so that Serve returns nil and pending requests fail with
// iq.ErrClosed.
var errShutdown = errs.New("stream: shut down", ErrClosed)

// ShutdownCondition is the stanza error a get or set gets while the Conn
// shuts down: wait/resource-constraint (RFC 6120 §8.3.3.18, whose type
// SHOULD be wait). The refusal is temporary, for the service lives on
// elsewhere (another process of a pool, the same one restarted), so the
// requester may retry: a wait error says so (§8.3.2). service-unavailable
// SHOULD be cancel, "do not retry", which is wrong for a rolling restart.
const ShutdownCondition = iq.ResourceConstraint

// receive hands an IQ the reader read to ep, except a get or a set once
// Shutdown started, which gets ShutdownCondition. receiving brackets the
// check and the hand-off, so that Shutdown, which sets shutdown before it
// looks at receiving, never misses a handler that starts after its drain
// began: one of the two always sees the other's store.
func (c *Conn) receive(ctx context.Context, ep *iq.Endpoint, in *iq.IQ) {
	if !in.IsRequest() {
		ep.Receive(ctx, in)
		return
	}
	c.receiving.Store(true)
	if c.shutdown.Load() {
		c.receiving.Store(false)
		c.refuse(ctx, in)
		return
	}
	ep.Receive(ctx, in)
	c.receiving.Store(false)
}

// refuse answers a request that arrived during Shutdown. The write is
// bounded as the end of a stream is, for the reader waits on it.
func (c *Conn) refuse(ctx context.Context, in *iq.IQ) {
	reply := in.ErrorReply(iq.NewError(iq.Wait, ShutdownCondition, "shutting down"))
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeWriteWait)
	defer cancel()
	if err := c.SendIQ(wctx, reply); err != nil {
		c.log.Debug("stream: refusal during shutdown not written", "id", in.ID, "err", err)
	}
}

// Shutdown ends the stream gracefully, as a program that stops (a rolling
// restart) must, while Serve runs with ep:
//
//  1. A get or set read from now on is not handed to ep: it is answered
//     wait/resource-constraint (ShutdownCondition, which says retry
//     later) at once. Results and errors still go to ep's Caller.
//  2. Shutdown waits until every handler already started has returned and
//     its reply was written (iq.Callee.Drain). Meanwhile reading goes on,
//     so requests of ours still pending may get their replies, and
//     handlers may still make requests of their own.
//  3. It writes our </stream:stream>; after it nothing more is written
//     (RFC 6120 §4.4). Reading goes on until the peer's closing tag, for
//     at most two seconds, so that replies already on their way still
//     resolve requests of ours; those left fail with iq.ErrClosed when the
//     stream ends (as Serve closes ep).
//  4. It closes the transport, and Serve returns nil.
//
// It returns nil when done. When ctx ends first, it closes the stream at
// once (handlers still running see their context end, as when Serve
// ends) and returns ctx's error. On a stream that has already ended it
// returns nil at once, or, when the stream broke during the wait, an
// error wrapping ErrClosed and the cause. Shutdown may be called more
// than once, and concurrently; Close cuts a Shutdown short. It panics if
// ctx or ep is nil.
func (c *Conn) Shutdown(ctx context.Context, ep *iq.Endpoint) error {
	if ctx == nil {
		panic("stream: Shutdown: nil context")
	}
	if ep == nil {
		panic("stream: Shutdown: nil Endpoint")
	}
	select {
	case <-c.done:
		return nil
	default:
	}
	if !c.shutdown.CompareAndSwap(false, true) {
		// Another Shutdown is under way: wait for it.
		select {
		case <-c.done:
			return nil
		case <-ctx.Done():
			c.abort()
			return ctx.Err()
		}
	}
	// The waits end with ctx, and with the stream.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.closing:
			cancel()
		case <-wctx.Done():
		}
	}()

	// No handler starts once the reader is out of receive.
	for c.receiving.Load() {
		select {
		case <-wctx.Done():
			return c.shutdownEnd(ctx)
		case <-time.After(100 * time.Microsecond):
		}
	}
	if err := ep.Callee.Drain(wctx); err != nil {
		return c.shutdownEnd(ctx)
	}
	if !c.closeWrite(ctx) {
		return c.shutdownEnd(ctx)
	}
	t := time.NewTimer(peerCloseWait)
	defer t.Stop()
	select {
	case <-c.readDone:
	case <-t.C:
	case <-ctx.Done():
	}
	c.hardClose()
	return ctx.Err()
}

// shutdownEnd ends a Shutdown cut short: by ctx, which closes the stream
// at once, or by the stream ending on its own.
func (c *Conn) shutdownEnd(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		c.abort()
		return err
	}
	<-c.done
	if errors.Is(c.cause, ErrClosed) {
		return nil
	}
	return closedBy(c.cause)
}

// abort ends the stream at once, as a Shutdown whose ctx ended does: no
// closing tag waits for a write under way.
func (c *Conn) abort() {
	c.closeOnce.Do(func() {
		c.cause = errShutdown
		close(c.closing)
		c.failQueue()
	})
	c.hardClose()
}

// closeWrite writes our closing tag after any write under way, and
// forbids writes after it, without closing the transport: the peer's
// replies may still be read. A write that holds the lock, or the tag's
// own, gets closeWriteWait (and ctx), after which the transport is closed
// as end closes it. It reports false when the stream had already ended.
func (c *Conn) closeWrite(ctx context.Context) bool {
	did := false
	c.closeOnce.Do(func() {
		did = true
		c.cause = errShutdown
		close(c.closing)
		c.failQueue()
		t := time.NewTimer(closeWriteWait)
		defer t.Stop()
		select {
		case c.wsem <- struct{}{}:
		case <-c.broken:
			// The writer holding the lock found the transport broken and
			// waits, in endStream, for this end to finish: nothing more
			// can be written.
			c.hardClose()
			return
		case <-t.C:
			c.hardClose()
			return
		case <-ctx.Done():
			c.hardClose()
			return
		}
		defer func() { <-c.wsem }()
		wrote := make(chan error, 1)
		go func() {
			_, err := c.rwc.Write(closingTag)
			wrote <- err
		}()
		select {
		case err := <-wrote:
			if err != nil {
				c.hardClose()
			}
		case <-t.C:
			c.hardClose()
			<-wrote
		case <-ctx.Done():
			c.hardClose()
			<-wrote
		}
	})
	return did
}

var closingTag = []byte("</stream:stream>")
