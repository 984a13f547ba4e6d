package component

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/internal/errs"
	"github.com/xmpp-iq/iq/stream"
)

// Defaults of a Supervisor.
const (
	// DefaultBackoffMin is the ceiling of the first wait before a new dial.
	DefaultBackoffMin = 500 * time.Millisecond
	// DefaultBackoffMax caps the waits between dials.
	DefaultBackoffMax = 30 * time.Second
	// DefaultHealthyAfter is how long a stream must have lived for the
	// waits to start again from DefaultBackoffMin once it ends.
	DefaultHealthyAfter = 30 * time.Second
)

var (
	// ErrNotConnected is returned, under WithFailFast, for an IQ sent
	// while the Supervisor has no stream up.
	ErrNotConnected = errors.New("component: not connected")
	// ErrStopped is wrapped, with iq.ErrClosed, by the error of an IQ sent
	// once Run has returned.
	ErrStopped = errors.New("component: supervisor stopped")
)

// DialFunc opens one stream for a Supervisor, ready to serve: a
// component.Dial with its arguments bound, or anything that gets there
// another way. ctx bounds the dial and ends when Run ends.
type DialFunc func(ctx context.Context) (*stream.Conn, error)

// State is what an Event reports.
type State int

// The states a Supervisor reports.
const (
	// Connected: a stream is up and served; Event.Conn is it.
	Connected State = iota + 1
	// Disconnected: a stream ended or a dial failed (Event.Err says why),
	// and the next dial comes after Event.RetryIn.
	Disconnected
	// Stopped: Run is returning Event.Err; nothing more will be dialed.
	Stopped
	// Degraded: a Pool's connection Event.Index (never the first) was
	// refused with ErrConflict, as by a server that allows one connection
	// per component (Prosody): it is given up for good, Event.Err says why,
	// and the pool goes on with the connections it has.
	Degraded
)

// String returns the state's name, "connected" say, for logs.
func (s State) String() string {
	switch s {
	case Connected:
		return "connected"
	case Disconnected:
		return "disconnected"
	case Stopped:
		return "stopped"
	case Degraded:
		return "degraded"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Event tells the program of a change of a Supervisor's state (WithNotify).
type Event struct {
	State   State
	Conn    *stream.Conn  // the stream, when Connected
	Err     error         // why, when Disconnected or Stopped (nil after Shutdown)
	RetryIn time.Duration // when Disconnected: the wait before the next dial
	Index   int           // which connection of a Pool, from 0; 0 for a Supervisor alone
}

// Option configures a Supervisor. As iq's options do, a zero value keeps
// the default and a value out of range panics when the option is called.
type Option func(*supervisorConfig)

type supervisorConfig struct {
	min, max   time.Duration
	healthy    time.Duration
	failFast   bool
	streamOpts []stream.Option
	dial       DialFunc
	notify     func(Event)
	clock      clock
	rand       func(n int64) int64
	poolStall  time.Duration // a Pool's stallAfter, when not 0 (tests)

	// Set by a Pool on its members.
	conflictStops bool   // ErrConflict stops Run, as a permanent refusal
	wake          func() // called when the stream up changes
}

// WithBackoff sets the waits between dials: the n-th wait in a row (from
// 0) is drawn uniformly from [0, min(max, min·2ⁿ)], "full jitter", so that
// many components that lost one server do not all come back at once.
// Zero keeps a default (DefaultBackoffMin, DefaultBackoffMax); it panics
// if either is negative or max is less than min.
func WithBackoff(min, max time.Duration) Option {
	if min < 0 || max < 0 {
		panic(fmt.Sprintf("component: WithBackoff(%v, %v): negative duration", min, max))
	}
	lo, hi := min, max
	if lo == 0 {
		lo = DefaultBackoffMin
	}
	if hi == 0 {
		hi = DefaultBackoffMax
	}
	if hi < lo {
		panic(fmt.Sprintf("component: WithBackoff(%v, %v): max is less than min", min, max))
	}
	return func(c *supervisorConfig) { c.min, c.max = lo, hi }
}

// WithHealthyAfter sets how long a stream must have lived for the waits to
// start again from the shortest once it ends (DefaultHealthyAfter by
// default). Zero keeps the default; a negative d panics.
func WithHealthyAfter(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("component: WithHealthyAfter(%v): negative duration", d))
	}
	return func(c *supervisorConfig) {
		if d > 0 {
			c.healthy = d
		}
	}
}

// WithFailFast makes an IQ sent while no stream is up fail at once with
// ErrNotConnected. By default it waits for the next stream, for as long as
// its context allows: a request until its deadline, a reply until the
// Callee's reply timeout (iq.WithReplyTimeout).
func WithFailFast() Option {
	return func(c *supervisorConfig) { c.failFast = true }
}

// WithStreamOptions configures each stream the Supervisor dials
// (stream.WithKeepalive, say); they follow the stream.WithLocalAddress
// that Connect sets. They are ignored with WithDialer.
func WithStreamOptions(opts ...stream.Option) Option {
	return func(c *supervisorConfig) { c.streamOpts = append(c.streamOpts, opts...) }
}

// WithDialer replaces how the Supervisor opens a stream: dial is called in
// place of Dial with the Supervisor's address, domain and secret. Its
// errors are judged as Dial's: ErrNotAuthorized and ErrHostUnknown stop
// the Supervisor, any other is retried.
func WithDialer(dial DialFunc) Option {
	if dial == nil {
		panic("component: WithDialer: nil DialFunc")
	}
	return func(c *supervisorConfig) { c.dial = dial }
}

// WithNotify has f called with each change of state, on Run's goroutine,
// in order: f must not block (hand the Event off if it has work to do).
func WithNotify(f func(Event)) Option {
	return func(c *supervisorConfig) { c.notify = f }
}

// clock is time as the Supervisor sees it, replaced in tests.
type clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed, and a
	// function that releases it early.
	After(d time.Duration) (<-chan time.Time, func())
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) After(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

// Supervisor keeps a component connected: Run dials, serves an Endpoint on
// the stream, and when the stream ends dials again, with waits that grow
// (see WithBackoff) until a stream lives long enough (WithHealthyAfter).
// The server's permanent refusals, ErrNotAuthorized and ErrHostUnknown,
// stop it; any other failure, ErrConflict included (another connection
// still holds the domain, as after a crash until the server notices), is
// retried.
//
// A Supervisor is the iq.Sender of the Endpoint it serves: it forwards each
// IQ to the stream up at the time. An IQ sent while no stream is up waits
// for one as long as its context allows, or fails at once (WithFailFast).
// A stream that ends fails the requests sent on it, with an error wrapping
// iq.ErrConnectionLost, and nothing else: the Endpoint, its handlers, its
// middleware and its other requests live on (stream.Conn.ServeShared).
//
//	sup := component.NewSupervisor("tcp", "localhost:5347", "echo.localhost", secret)
//	ep := iq.NewEndpoint(sup, iq.WithLocalJID("echo.localhost"))
//	ep.Callee.Get(ns, "echo", handler)
//	err := sup.Run(ctx, ep, nil)
//
// Its methods are safe for concurrent use; Run runs once.
type Supervisor struct {
	cfg supervisorConfig

	mu      sync.Mutex
	conn    *stream.Conn  // the stream up, or nil
	change  chan struct{} // closed, and replaced, when conn or stopped changes
	stopped error         // set when Run returns: what IQs sent then fail with
	running bool
	ep      *iq.Endpoint

	quit     chan struct{} // closed by Shutdown
	quitOnce sync.Once
	done     chan struct{} // closed when Run has returned
}

// NewSupervisor returns a Supervisor that dials the server at addr with
// Dial, as domain with secret (WithDialer replaces this). Nothing happens
// until Run. It panics if domain is not a bare domain name.
func NewSupervisor(network, addr, domain, secret string, opts ...Option) *Supervisor {
	if j, err := iq.ParseJID(domain); err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
		panic(fmt.Sprintf("component: NewSupervisor: %q is not a domain name", domain))
	}
	s := newSupervisor(opts)
	if s.cfg.dial == nil {
		streamOpts := s.cfg.streamOpts
		s.cfg.dial = func(ctx context.Context) (*stream.Conn, error) {
			return Dial(ctx, network, addr, domain, secret, streamOpts...)
		}
	}
	return s
}

func newSupervisor(opts []Option) *Supervisor {
	cfg := supervisorConfig{
		min: DefaultBackoffMin, max: DefaultBackoffMax, healthy: DefaultHealthyAfter,
		clock: realClock{}, rand: rand.Int64N,
	}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	return &Supervisor{
		cfg:    cfg,
		change: make(chan struct{}),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
}

// backoff returns the wait before the dial that follows n failures in a
// row: full jitter over [0, min(max, min·2ⁿ)].
func backoff(n int, min, max time.Duration, rnd func(int64) int64) time.Duration {
	ceil := max
	if n < 62 && min<<n > 0 && min<<n < max {
		ceil = min << n
	}
	return time.Duration(rnd(int64(ceil) + 1))
}

// SendIQ implements iq.Sender: it sends i on the stream up, or waits for
// one (see WithFailFast). A send cut short by the end of its stream fails
// with an error wrapping iq.ErrConnectionLost, as the requests sent on that
// stream do. Once Run has returned it fails with an error wrapping
// ErrStopped and iq.ErrClosed.
func (s *Supervisor) SendIQ(ctx context.Context, i *iq.IQ) error {
	conn, err := s.streamFor(ctx)
	if err != nil {
		return err
	}
	return sendOn(ctx, conn, i)
}

// SendIQAsync implements iq.AsyncSender: it is SendIQ for a sender that
// does not wait behind a write under way on the stream up (see
// stream.Conn.SendIQAsync). Until a stream is up, it waits as SendIQ
// does. The verdict of an IQ queued on a stream that then ends wraps
// iq.ErrConnectionLost, as SendIQ's error does.
func (s *Supervisor) SendIQAsync(ctx context.Context, i *iq.IQ, n iq.Notifier) (queued bool, err error) {
	conn, err := s.streamFor(ctx)
	if err != nil {
		return false, err
	}
	return sendOnAsync(ctx, conn, i, n, nil, 0)
}

// streamFor returns the stream an IQ sent with ctx goes out on: the
// stream whose own probe ctx is, else the stream up, waited for as long
// as ctx allows (or not at all: WithFailFast).
func (s *Supervisor) streamFor(ctx context.Context) (*stream.Conn, error) {
	if conn, ok := stream.ConnFromContext(ctx); ok {
		// A stream's own probe (its read timeout's ping) goes out on it.
		return conn, nil
	}
	for {
		s.mu.Lock()
		conn, change, stopped := s.conn, s.change, s.stopped
		s.mu.Unlock()
		switch {
		case stopped != nil:
			return nil, stopped
		case conn != nil && conn.Err() == nil:
			return conn, nil
		case s.cfg.failFast:
			return nil, ErrNotConnected
		}
		// A stream that ended before Run noticed is waited out too: Run
		// clears it, which closes change.
		select {
		case <-change:
		case <-ctx.Done():
			return nil, fmt.Errorf("component: no stream up: %w", ctx.Err())
		}
	}
}

func sendOn(ctx context.Context, conn *stream.Conn, i *iq.IQ) error {
	return lostWith(conn, iq.SendVia(ctx, conn, i))
}

// lostWith is err, the error of a send on conn, wrapping
// iq.ErrConnectionLost when the stream ended under the send: the IQ is
// lost with it, as the requests it had sent are.
func lostWith(conn *stream.Conn, err error) error {
	if err != nil && (errors.Is(err, stream.ErrClosed) || conn.Err() != nil) {
		return errs.New("component: connection lost: "+errs.Trim(err, "component: "), iq.ErrConnectionLost, err)
	}
	return err
}

// settled is told that an IQ sent at sent (a poolClock reading) is
// settled, with the stream's verdict.
type settled func(sent int64, err error)

// sendOnAsync is sendOn for an AsyncSender: a verdict told later means
// what sendOn's error would, and is relayed to n. after, when not nil, is
// told once the IQ is settled, before n is, with sent given back.
func sendOnAsync(ctx context.Context, conn *stream.Conn, i *iq.IQ, n iq.Notifier, after settled, sent int64) (bool, error) {
	w := relayPool.Get().(*relay)
	w.n, w.conn, w.after, w.sent = n, conn, after, sent
	queued, err := iq.SendViaAsync(ctx, conn, i, w)
	if queued {
		return true, nil
	}
	w.put()
	if after != nil {
		after(sent, err)
	}
	return false, lostWith(conn, err)
}

// relay passes a stream's verdict on an IQ it queued on to the notifier
// the Supervisor's or the Pool's SendIQAsync was given.
type relay struct {
	n     iq.Notifier
	conn  *stream.Conn
	after settled
	sent  int64
}

var relayPool = sync.Pool{New: func() any { return new(relay) }}

func (w *relay) put() {
	w.n, w.conn, w.after = nil, nil, nil
	relayPool.Put(w)
}

// Sent implements iq.Notifier.
func (w *relay) Sent(err error) {
	n, conn, after, sent := w.n, w.conn, w.after, w.sent
	w.put()
	if after != nil {
		after(sent, err)
	}
	n.Sent(lostWith(conn, err))
}

// Conn returns the stream up, or nil, for what an Endpoint does not send
// (messages, presence: Conn.SendElement). It may end at any time.
func (s *Supervisor) Conn() *stream.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn
}

// setConn makes conn the stream up (nil for none) and wakes the senders
// waiting for a change. It refuses a stream once Shutdown has begun,
// which reads the stream up under the same lock.
func (s *Supervisor) setConn(conn *stream.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if conn != nil {
		select {
		case <-s.quit:
			return false
		default:
		}
	}
	s.conn = conn
	close(s.change)
	s.change = make(chan struct{})
	if s.cfg.wake != nil {
		s.cfg.wake()
	}
	return true
}

func (s *Supervisor) notify(e Event) {
	if s.cfg.notify != nil {
		s.cfg.notify(e)
	}
}

// Run keeps ep served until ctx ends, Shutdown is called or the server
// refuses the component for good; fallback gets what is not an IQ, as with
// stream.Conn.Serve. Then it closes ep with its cause, failing what is
// pending, and returns: nil after Shutdown, ctx's error, or the refusal
// (an error wrapping ErrNotAuthorized or ErrHostUnknown and the server's
// *stream.StreamError). ep's Sender should be s. Run may be called once; it
// panics if ctx or ep is nil.
func (s *Supervisor) Run(ctx context.Context, ep *iq.Endpoint, fallback func(context.Context, *iq.Element)) error {
	if ctx == nil || ep == nil {
		panic("component: Supervisor.Run: nil Context or Endpoint")
	}
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("component: Supervisor.Run called twice")
	}
	s.running, s.ep = true, ep
	s.mu.Unlock()
	return s.runOwned(ctx, ep, fallback, true)
}

// runOwned is Run once checked; a Pool's members run it without closeEP,
// as the Endpoint outlives each of them.
func (s *Supervisor) runOwned(ctx context.Context, ep *iq.Endpoint, fallback func(context.Context, *iq.Element), closeEP bool) error {

	// A dial under way ends when Shutdown is called, too; a stream up is
	// ended by Shutdown itself, gracefully.
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.quit:
			cancel()
		case <-dctx.Done():
		}
	}()
	err := s.run(ctx, dctx, ep, fallback)
	s.notify(Event{State: Stopped, Err: err})
	stopped := ErrStopped
	if err != nil {
		stopped = errs.New("component: supervisor stopped: "+errs.Trim(err, "component: "), ErrStopped, err)
	}
	s.mu.Lock()
	s.stopped = errs.New(stopped.Error(), stopped, iq.ErrClosed)
	s.conn = nil
	close(s.change)
	s.change = make(chan struct{})
	s.mu.Unlock()
	if s.cfg.wake != nil {
		s.cfg.wake()
	}
	if closeEP {
		ep.CloseWithError(stopped)
	}
	close(s.done)
	return err
}

// run is Run's loop; it returns Run's result. ctx is the caller's, dctx
// the dials', which also ends on Shutdown.
func (s *Supervisor) run(ctx, dctx context.Context, ep *iq.Endpoint, fallback func(context.Context, *iq.Element)) error {
	fails := 0 // dials or short-lived streams in a row
	for {
		conn, err := s.cfg.dial(dctx)
		if err == nil && !s.setConn(conn) {
			_ = conn.Close() // Shutdown came first
			return nil
		}
		if err == nil {
			s.notify(Event{State: Connected, Conn: conn})
			start := s.cfg.clock.Now()
			// The serving context names the stream, so that a Pool
			// sends the replies to what arrived on it back on it.
			err = conn.ServeShared(context.WithValue(ctx, servedOnKey{}, conn), ep, fallback)
			s.setConn(nil)
			if err == nil {
				err = conn.Err() // why the stream ended, even orderly
			}
			if s.cfg.clock.Now().Sub(start) >= s.cfg.healthy {
				fails = 0
			}
		}
		if stop, rerr := s.stopping(ctx, err); stop {
			return rerr
		}
		wait := backoff(fails, s.cfg.min, s.cfg.max, s.cfg.rand)
		fails++
		s.notify(Event{State: Disconnected, Err: err, RetryIn: wait})
		c, release := s.cfg.clock.After(wait)
		select {
		case <-c:
		case <-dctx.Done():
			release()
			_, rerr := s.stopping(ctx, nil)
			return rerr
		}
	}
}

// stopping reports whether Run must return after err, and what.
func (s *Supervisor) stopping(ctx context.Context, err error) (bool, error) {
	select {
	case <-s.quit:
		return true, nil
	default:
	}
	if ctx.Err() != nil {
		return true, ctx.Err()
	}
	if errors.Is(err, ErrNotAuthorized) || errors.Is(err, ErrHostUnknown) ||
		(s.cfg.conflictStops && errors.Is(err, ErrConflict)) {
		return true, err
	}
	return false, nil
}

// Shutdown stops s gracefully: it dials no more, and ends the stream up
// with stream.Conn.Shutdown (a get or set that still arrives is answered
// wait/resource-constraint, running handlers finish and their replies are
// written, then the stream closes with its closing tag), then waits for
// Run to return, which closes the Endpoint. When ctx ends first, the
// stream is closed at once and Shutdown returns ctx's error. Shutdown
// before Run makes Run return at once. It is idempotent.
func (s *Supervisor) Shutdown(ctx context.Context) error {
	if ctx == nil {
		panic("component: Supervisor.Shutdown: nil Context")
	}
	s.mu.Lock()
	s.quitOnce.Do(func() { close(s.quit) })
	conn, ep, running := s.conn, s.ep, s.running
	s.mu.Unlock()
	if conn != nil {
		// Ending at once when ctx does, Shutdown returns ctx's error,
		// and Run returns.
		_ = conn.Shutdown(ctx, ep)
	}
	if !running {
		return nil
	}
	select {
	case <-s.done:
		return ctx.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}
