// Package iqtest provides utilities for testing code built on package iq,
// in the spirit of net/http/httptest: a Pair of Endpoints connected in
// memory, a Recorder that keeps what is sent through it, and NewRequest,
// which parses an IQ from XML.
package iqtest

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/internal/errs"
)

// NewRequest parses raw, one <iq> in XML, as a stream reader would, for a
// test to hand to Receive or Reply. It panics if raw does not parse, as
// httptest.NewRequest does: it is meant for literals in tests.
func NewRequest(raw string) *iq.IQ {
	in := new(iq.IQ)
	if err := xml.Unmarshal([]byte(raw), in); err != nil {
		panic(fmt.Sprintf("iqtest: NewRequest: %v", err))
	}
	return in
}

// ErrClosed is returned by a Pair's Senders once the Pair is closed. It
// wraps iq.ErrClosed.
var ErrClosed = errs.New("iqtest: pair closed", iq.ErrClosed)

// Option configures a Pair. As with iq.Option, the zero value of each
// keeps the default (no latency, no loss, nothing dropped or tapped), and
// an out-of-range value panics when the option is called.
type Option func(*config)

type config struct {
	latency time.Duration
	loss    float64
	drop    func(*iq.IQ) bool
	tap     func(from string, raw []byte)
	epOpts  []iq.Option
}

// WithLatency delays every IQ by d on its way, in both directions. Order
// is kept. It panics if d is negative.
func WithLatency(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("iqtest: WithLatency: negative duration %v", d))
	}
	return func(c *config) { c.latency = d }
}

// WithLoss drops each IQ with probability p, in both directions, as a
// lossy link would: the Sender reports no error. It panics unless p is
// from 0 to 1.
func WithLoss(p float64) Option {
	if !(p >= 0 && p <= 1) { // NaN too
		panic(fmt.Sprintf("iqtest: WithLoss: probability %v not in [0, 1]", p))
	}
	return func(c *config) { c.loss = p }
}

// WithDrop drops, in both directions, the IQs for which drop returns
// true, for a test to lose exactly what it means to. drop sees each IQ as
// the other side would receive it, with its from stamped; it is called
// from the sending goroutine, and must not modify the IQ. nil drops
// nothing.
func WithDrop(drop func(*iq.IQ) bool) Option { return func(c *config) { c.drop = drop } }

// WithWireTap calls tap with the XML of every IQ either Endpoint sends,
// as it goes over the wire (before the Pair parses it back and stamps
// its from), with the address of the Endpoint that sent it, for a test to
// look at the wire form. tap is called from the sending goroutine, for
// IQs that are then dropped or lost too, and must not keep raw. nil taps
// nothing.
func WithWireTap(tap func(from string, raw []byte)) Option {
	return func(c *config) { c.tap = tap }
}

// WithEndpointOptions passes opts to both Endpoints' constructor, after
// the iq.WithLocalJID that NewPair gives each.
func WithEndpointOptions(opts ...iq.Option) Option {
	return func(c *config) { c.epOpts = append(c.epOpts, opts...) }
}

// Pair is two Endpoints, A and B, connected in memory as if by a server:
// every IQ either sends is serialized to XML, parsed back, stamped with
// its sender's address as from (whatever from it carried; its to is kept)
// and handed to the other's Receive, whatever its to. Each Endpoint knows
// its own address (iq.WithLocalJID). Delivery is asynchronous, in order
// in each direction, with the optional latency and loss of the Options.
//
// A Pair is safe for concurrent use. Close it when done: it stops the
// goroutines that deliver IQs (two) and closes both Endpoints.
type Pair struct {
	A, B       *iq.Endpoint
	AJID, BJID string

	ab, ba *link
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// NewPair returns a Pair whose Endpoints have the addresses a and b (a
// client's full JID, a server's or a component's domain…). It panics if
// either is empty or malformed: an Endpoint that does not know its own
// address accepts responses from any sender.
func NewPair(a, b string, opts ...Option) *Pair {
	mustAddress("NewPair", a)
	mustAddress("NewPair", b)
	var cfg config
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pair{AJID: a, BJID: b, cancel: cancel}
	p.ab = newLink(ctx, a, cfg)
	p.ba = newLink(ctx, b, cfg)
	p.A = iq.NewEndpoint(p.ab, append([]iq.Option{iq.WithLocalJID(a)}, cfg.epOpts...)...)
	p.B = iq.NewEndpoint(p.ba, append([]iq.Option{iq.WithLocalJID(b)}, cfg.epOpts...)...)
	p.ab.to, p.ba.to = p.B, p.A
	p.wg.Add(2)
	go p.ab.run(&p.wg)
	go p.ba.run(&p.wg)
	return p
}

func mustAddress(fn, addr string) {
	if addr == "" {
		panic(fmt.Sprintf("iqtest: %s: empty address", fn))
	}
	if _, err := iq.ParseJID(addr); err != nil {
		panic(fmt.Sprintf("iqtest: %s: address %q: %v", fn, addr, err))
	}
}

// Close stops delivery, waiting for the delivering goroutines to return,
// then closes both Endpoints (pending requests fail with iq.ErrClosed,
// running handlers' contexts are cancelled). IQs still in flight are
// dropped. It is idempotent and returns nil.
func (p *Pair) Close() error {
	p.once.Do(func() {
		p.cancel()
		p.wg.Wait()
		p.A.Close()
		p.B.Close()
	})
	return nil
}

// link carries IQs in one direction. It is the Sender of the Endpoint at
// its start.
type link struct {
	ctx  context.Context
	from string
	to   *iq.Endpoint
	cfg  config

	mu    sync.Mutex
	queue []delivery
	wake  chan struct{}
	rng   *rand.Rand
}

type delivery struct {
	at time.Time
	in *iq.IQ
}

func newLink(ctx context.Context, from string, cfg config) *link {
	return &link{ctx: ctx, from: from, cfg: cfg, wake: make(chan struct{}, 1),
		rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

// SendIQ implements iq.Sender.
func (l *link) SendIQ(_ context.Context, out *iq.IQ) error {
	if l.ctx.Err() != nil {
		return ErrClosed
	}
	b, err := out.AppendXML(nil)
	if err != nil {
		return err
	}
	if l.cfg.tap != nil {
		l.cfg.tap(l.from, b)
	}
	in := new(iq.IQ)
	if err := xml.Unmarshal(b, in); err != nil {
		return fmt.Errorf("iqtest: %s does not parse back: %w", b, err)
	}
	in.From = l.from
	if l.cfg.drop != nil && l.cfg.drop(in) {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cfg.loss > 0 && l.rng.Float64() < l.cfg.loss {
		return nil
	}
	l.queue = append(l.queue, delivery{at: time.Now().Add(l.cfg.latency), in: in})
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return nil
}

func (l *link) run(wg *sync.WaitGroup) {
	defer wg.Done()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		l.mu.Lock()
		if len(l.queue) == 0 {
			l.mu.Unlock()
			select {
			case <-l.wake:
				continue
			case <-l.ctx.Done():
				return
			}
		}
		d := l.queue[0]
		l.mu.Unlock()
		if wait := time.Until(d.at); wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-timer.C:
			case <-l.ctx.Done():
				return
			}
		}
		l.mu.Lock()
		l.queue[0] = delivery{}
		l.queue = l.queue[1:]
		l.mu.Unlock()
		if l.ctx.Err() != nil {
			return
		}
		l.to.Receive(l.ctx, d.in)
	}
}

// Recorder is an iq.Sender that keeps every IQ sent through it, for a test
// to look at: give it to iq.NewCallee, iq.NewCaller or iq.NewEndpoint. It
// is safe for concurrent use; the zero value is ready to use.
type Recorder struct {
	mu      sync.Mutex
	sent    []*iq.IQ
	next    int // index in sent of what Next returns next
	err     error
	onSend  func(context.Context, *iq.IQ) error
	changed chan struct{} // closed and replaced on every send
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return new(Recorder) }

// SendIQ implements iq.Sender: it records out (the pointer given, not a
// copy) and returns the error FailWith set, nil by default, or, if OnSend
// set a function, calls it and returns what it returns. Failed sends are
// recorded too.
func (r *Recorder) SendIQ(ctx context.Context, out *iq.IQ) error {
	r.mu.Lock()
	r.sent = append(r.sent, out)
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
	err, onSend := r.err, r.onSend
	r.mu.Unlock()
	if onSend != nil {
		return onSend(ctx, out)
	}
	return err
}

// FailWith makes SendIQ return err from now on (nil: succeed again).
func (r *Recorder) FailWith(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

// OnSend makes SendIQ call f with its arguments from now on, once it has
// recorded the IQ (so Next, WaitFor and Len already see it), and return
// what f returns instead of the error FailWith set; nil f undoes it. f
// runs on the sending goroutine without the Recorder's lock held: it may
// play the other side of a Caller, handing it a response through Receive,
// at once (before SendIQ returns) or from a goroutine of its own; block
// until ctx is done, as a congested stream would; cancel a context at the
// moment of the send; or fail in a pattern of its own. f must be safe for
// concurrent use if the Recorder's user sends concurrently.
func (r *Recorder) OnSend(f func(ctx context.Context, out *iq.IQ) error) {
	r.mu.Lock()
	r.onSend = f
	r.mu.Unlock()
}

// Sent returns what has been sent so far, in order, in a new slice.
func (r *Recorder) Sent() []*iq.IQ {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*iq.IQ(nil), r.sent...)
}

// Len reports how many IQs have been sent.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sent)
}

// Last returns the IQ sent last, or nil if none has been.
func (r *Recorder) Last() *iq.IQ {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sent) == 0 {
		return nil
	}
	return r.sent[len(r.sent)-1]
}

// Reset forgets what has been sent; Next starts again from the next IQ
// sent.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.sent = nil
	r.next = 0
	r.mu.Unlock()
}

// Next returns the first IQ sent that Next has not returned yet, waiting
// for at most timeout for one to be sent: successive calls walk through
// what is sent, in order, one IQ each, as a test reads the replies a
// Callee sends one after another. It fails with an error when timeout
// passes first, which is also how a test checks that nothing more is sent
// for a while. Sent, Len, Last and WaitFor are not affected by it.
func (r *Recorder) Next(timeout time.Duration) (*iq.IQ, error) {
	var out *iq.IQ
	err := r.wait(timeout, func() bool {
		if r.next >= len(r.sent) {
			return false
		}
		out = r.sent[r.next]
		r.next++
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("iqtest: nothing more sent after %v (%d IQs sent)", timeout, r.Len())
	}
	return out, nil
}

// WaitFor waits until at least n IQs have been sent, for at most timeout,
// and returns the first n. It fails with an error saying how many were
// sent when timeout passes first. It is the way to wait for the replies a
// Callee sends from goroutines of its own.
func (r *Recorder) WaitFor(n int, timeout time.Duration) ([]*iq.IQ, error) {
	var out []*iq.IQ
	err := r.wait(timeout, func() bool {
		if len(r.sent) < n {
			return false
		}
		out = append([]*iq.IQ(nil), r.sent[:n]...)
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("iqtest: %d of %d IQs sent after %v", r.Len(), n, timeout)
	}
	return out, nil
}

// errWait is what wait returns when its timeout passes.
var errWait = errors.New("timeout")

// wait calls done, with r.mu held, until it returns true, after each send,
// for at most timeout; then it returns errWait.
func (r *Recorder) wait(timeout time.Duration, done func() bool) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		r.mu.Lock()
		if done() {
			r.mu.Unlock()
			return nil
		}
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			return errWait
		}
	}
}
