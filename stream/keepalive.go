package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xmpp-iq/iq"
)

// DefaultKeepalive is how long, by default, a served Conn lets its side
// of the stream stay silent before it writes a whitespace keepalive (see
// WithKeepalive).
const DefaultKeepalive = 30 * time.Second

// DefaultReadTimeout is how long, by default, a served Conn hears nothing
// from the peer before it probes the stream with a ping (see
// WithReadTimeout). With the probe's further half of it, a dead stream is
// noticed within 60 s.
const DefaultReadTimeout = 40 * time.Second

// NSPing is the XEP-0199 namespace of the probe's <ping/>.
const NSPing = "urn:xmpp:ping"

// ErrIdle reports a stream on which nothing was read for the read
// timeout, nor in the further time given to a ping sent to probe it
// (WithReadTimeout): the peer is taken to be gone, and the stream was
// ended with a connection-timeout stream error.
var ErrIdle = errors.New("stream: peer silent")

// WithKeepalive sets how long a served Conn writes nothing before it
// writes a single space between two stanzas, a whitespace keepalive (RFC
// 6120 §4.6.1), which keeps NAT mappings and proxies from dropping an
// idle connection and makes the transport notice a dead one: d after the
// last write, whatever it was, or up to d/8 sooner (DefaultKeepalive by
// default; while it writes, the Conn reads the clock once per eighth of d,
// not for every stanza). The space
// takes the write lock as any write does, so it never lands inside a
// stanza; a stream with traffic sends none. Keepalives go out while Serve
// runs. 0 turns them off; a negative d panics.
func WithKeepalive(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("stream: WithKeepalive(%v): negative interval", d))
	}
	return func(c *config) { c.keepalive = d }
}

// WithReadTimeout sets how long a served Conn may read nothing at all
// (not a stanza, not a whitespace keepalive) before it asks whether the
// stream is still alive (DefaultReadTimeout by default): d, or up to d/8
// less (while bytes come, the Conn reads the clock once per eighth of d,
// not for every read).
//
// A server owes an idle stream nothing: ejabberd's server-side pings
// (mod_ping's send_pings, off by default) are for client sessions, and
// neither it nor Prosody writes whitespace to a component by default. So
// silence alone does not prove the stream dead: after d of it, the Conn sends an
// XEP-0199 ping (<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>)
// through the Endpoint's Caller, on this stream (see ConnFromContext), to
// the peer's address (WithPingTarget; by default the from of the peer's
// stream header, or no to on a stream made by New). Any answer, a result
// or an error reply, and anything else read in the meantime, proves the
// stream alive. When nothing is read for d/2 more, the Conn ends the
// stream with a connection-timeout stream error (RFC 6120 §4.9.3.3), and
// Serve returns an error wrapping ErrIdle; pending requests fail with
// iq.ErrClosed, as on any end of the stream.
//
// So a stream the peer has silently left ends between 1.375×d and 1.5×d
// after the last byte read (55–60 s by default), plus the time the timers
// take to fire.
// On a component stream the header's from is the component's own domain:
// the ping goes through the server and comes back to the component, whose
// Callee answers it (with the ping package's handler, or
// feature-not-implemented); either way something is read. The check runs
// while Serve runs. 0 turns it off; a negative d panics.
func WithReadTimeout(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("stream: WithReadTimeout(%v): negative timeout", d))
	}
	return func(c *config) { c.readTimeout = d }
}

// WithPingTarget sets the address the read timeout's ping goes to (see
// WithReadTimeout): the server's domain, say, on a component stream whose
// server answers pings. It panics if addr is not a well-formed JID.
func WithPingTarget(addr string) Option {
	j, err := iq.ParseJID(addr)
	if err != nil {
		panic(fmt.Sprintf("stream: WithPingTarget(%q): %v", addr, err))
	}
	return func(c *config) { c.pingTo = j.String(); c.pingToSet = true }
}

type connKey struct{}

// ConnFromContext returns the Conn a request must be written on, when the
// Conn itself made it: the read timeout's ping proves one stream alive,
// so it must go out on that stream. A Sender that spreads requests over
// several Conns (a pool) looks here first and writes the request on the
// Conn found, when it is one of its own.
func ConnFromContext(ctx context.Context) (*Conn, bool) {
	c, ok := ctx.Value(connKey{}).(*Conn)
	return c, ok
}

// activityReader records when the transport last gave bytes (see
// stamp): no timer, and a clock read only for the first Read of a window.
type activityReader struct {
	r io.Reader
	c *Conn
}

func (a activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.c.lastRead.mark(a.c)
	}
	return n, err
}

// wrote records that a write has just ended, for the keepalives: nothing
// to record, and no clock to read, without them.
func (c *Conn) wrote() {
	if c.keepalive > 0 {
		c.lastWrite.mark(c)
	}
}

// stampWindows is how many windows a stamp's interval (the keepalive, the
// read timeout) holds: a stamp is at most that fraction of it older than
// the transfer it stands for.
const stampWindows = 8

// stamp is the time, on the Conn's clock, of the last transfer one way
// (bytes read, a write ended), as the monitor needs it: give or take an
// eighth of the interval it is checked against. Only the first transfer
// of a window reads the clock: the rest find the window open and store
// nothing. Reading the clock for every stanza, on each side, cost about
// 5 % of a round trip one request at a time over net.Pipe, and each
// store moved a cache line shared by the goroutines that read and write
// (BENCHMARKS.md).
//
// The first transfer opens the window (open, then at: its time) and
// tells the monitor (Conn.stamped), which closes it once it has lasted
// its eighth of the interval (closeAfter); the next transfer opens
// another. So the last transfer lies in the window opened at at, which
// lasts at most an eighth: the monitor may act up to that much early,
// never late, and a stream in use costs two wakes of the monitor per
// window, an idle one none. Before the monitor runs (before Serve), no
// one would close a window: each transfer stamps its exact time instead.
type stamp struct {
	at   atomic.Int64 // when the window opened: the first transfer in it
	open atomic.Bool
}

// mark records a transfer: the clock, if it opens a window.
func (s *stamp) mark(c *Conn) {
	if s.open.Load() {
		return
	}
	if !c.monitored.Load() {
		// No monitor to close a window (before Serve: the stream's
		// header, a stanza sent early): an exact stamp.
		s.at.Store(c.clock())
		return
	}
	s.open.Store(true)
	s.at.Store(c.clock())
	select {
	case c.stamped <- struct{}{}:
	default: // the monitor has yet to look at an earlier one
	}
}

// set stamps now, outside any window: the probe's answer.
func (s *stamp) set(now int64) { s.at.Store(now) }

// closeAfter closes the window once it has lasted w, and returns when it
// next needs looking at: when it is due to close, or never (MaxInt64). A
// window closed late (the monitor was held up) may hold transfers up to
// now: its stamp moves to now-w, so that it is still at most w early.
// Nothing else writes at while the window is open (but set, later).
func (s *stamp) closeAfter(now, w int64) int64 {
	if !s.open.Load() {
		return math.MaxInt64
	}
	at := s.at.Load()
	if now-at < w {
		return at + w
	}
	if at < now-w {
		s.at.CompareAndSwap(at, now-w)
	}
	s.open.Store(false)
	return math.MaxInt64
}

// clock is the time since the Conn was made, on the monotonic clock.
func (c *Conn) clock() int64 { return int64(time.Since(c.epoch)) }

// startMonitor starts the keepalives and the read timeout's watch, if
// either is on, for as long as Serve runs; the function returned stops
// them and waits until every goroutine they started has ended.
func (c *Conn) startMonitor(ctx context.Context, ep *iq.Endpoint) func() {
	if c.keepalive == 0 && c.readTimeout == 0 {
		return func() {}
	}
	mctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.monitor(mctx, ep, &wg)
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

// monitor is one goroutine with one timer, set to the next moment
// something may be due: the reader and the writers only store the time of
// their last transfer, and nobody resets a timer per stanza.
func (c *Conn) monitor(ctx context.Context, ep *iq.Endpoint, wg *sync.WaitGroup) {
	keep, rt := int64(c.keepalive), int64(c.readTimeout)
	wait := rt / 2
	probeAt := int64(-1) // when the ping went out, while it is unanswered
	var kaBusy bool
	kaDone := make(chan struct{}, 1)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	// Transfers before now stamped their exact time (see mark); from now
	// on they open windows, which this goroutine closes.
	c.monitored.Store(true)
	for {
		now := c.clock()
		next := int64(math.MaxInt64)
		if keep > 0 {
			next = min(next, c.lastWrite.closeAfter(now, max(keep/stampWindows, 1)))
			lw := c.lastWrite.at.Load()
			if now-lw >= keep && !kaBusy {
				kaBusy = true
				wg.Add(1)
				go func() {
					defer wg.Done()
					c.writeKeepalive(ctx)
					kaDone <- struct{}{}
				}()
				lw = now
			}
			if !kaBusy {
				next = min(next, lw+keep)
			}
		}
		if rt > 0 {
			next = min(next, c.lastRead.closeAfter(now, max(rt/stampWindows, 1)))
			lr := c.lastRead.at.Load()
			if probeAt >= 0 && lr > probeAt {
				probeAt = -1 // something came: the stream is alive
			}
			switch {
			case probeAt < 0 && now-lr >= rt:
				probeAt = now
				wg.Add(1)
				go func() {
					defer wg.Done()
					c.probe(ctx, ep, time.Duration(wait))
				}()
				next = min(next, now+wait)
			case probeAt < 0:
				next = min(next, lr+rt)
			case now-probeAt >= wait:
				c.end(fmt.Errorf("%w for %v: a ping went unanswered", ErrIdle, time.Duration(now-lr).Round(time.Millisecond)),
					&StreamError{Condition: ConnectionTimeout})
				return
			default:
				next = min(next, probeAt+wait)
			}
		}
		if next == math.MaxInt64 {
			next = now + int64(time.Hour)
		}
		t.Reset(time.Duration(next - now))
		select {
		case <-t.C:
		case <-c.stamped: // a window opened: it closes an eighth later
		case <-kaDone:
			kaBusy = false
		case <-ctx.Done():
			return
		case <-c.closing:
			return
		}
	}
}

// writeKeepalive writes one space, as any write, within the interval: a
// peer that does not read holds only the keepalive up.
func (c *Conn) writeKeepalive(ctx context.Context) {
	wctx, cancel := context.WithTimeout(ctx, max(c.keepalive, closeWriteWait))
	defer cancel()
	if err := c.write(wctx, space); err != nil && !c.isClosing() {
		c.log.Debug("stream: keepalive not written", "err", err)
	}
}

var space = []byte{' '}

// probe pings the peer on this stream; an answer of any kind counts as
// something read, even one that a pool's server delivered on another of
// its connections: the ping reached the server, so this stream carries.
func (c *Conn) probe(ctx context.Context, ep *iq.Endpoint, wait time.Duration) {
	to := c.pingTo
	if !c.pingToSet {
		to = c.header.From
	}
	pctx, cancel := context.WithTimeout(context.WithValue(ctx, connKey{}, c), wait)
	defer cancel()
	_, err := ep.Caller.Request(pctx, &iq.IQ{Type: iq.TypeGet, To: to, Payload: iq.NewElement(NSPing, "ping")})
	var serr *iq.StanzaError
	if err == nil || errors.As(err, &serr) {
		c.lastRead.set(c.clock())
		return
	}
	c.log.Debug("stream: ping unanswered", "to", to, "err", err)
}
