package component

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/internal/errs"
	"github.com/xmpp-iq/iq/stream"
)

// servedOnKey marks the context a Supervisor serves a stream with: the
// handlers' replies carry it to the Sender, which knows where the request
// came from.
type servedOnKey struct{}

// Pool keeps n connections of one component up, each kept by a Supervisor
// of its own (reconnecting with backoff), all serving one Endpoint: one
// Caller, so ids are unique pool-wide, and one Callee, so handlers,
// middleware and metrics are registered once. A Pool is the Endpoint's
// iq.Sender:
//
//   - requests go out on the live connections round-robin, in runs: a
//     request queues behind the write under way on the connection the
//     one before it took, and leaves with the others queued there in that
//     connection's next write, up to 16 in a row, when that connection's
//     writes are quick (its last one written whole ended within the last
//     millisecond, and took under a quarter of it from send to verdict);
//     otherwise it goes to the next live connection, skipping those with
//     a write under way while one is free. Requests sent one at a time,
//     each once the Pool has counted the one before as written,
//     alternate. Under load, a run shares its connection's writes, where
//     requests spread one by one would each pay a write of their own (a
//     system call, and a wake of the reader at the other end): see
//     BENCHMARKS.md for what that costs;
//   - a connection whose writes are backed up (under way, none written
//     whole for a millisecond: stuck, or a slow link) takes no new request
//     while another live connection is not; when all are, the one that
//     last wrote a stanza whole does;
//   - a reply goes out on the connection its request came in on while that
//     one is up, else on any live one;
//   - a reply may come back on any connection (ejabberd routes each stanza
//     to one of a component's connections at random): every connection's
//     reader feeds the same Caller, which resolves it;
//   - a connection that ends fails only the requests sent on it, with an
//     error wrapping iq.ErrConnectionLost; the others go on, and it is
//     dialed again.
//
// The first connection is dialed first; the others once it is up. A
// server that allows one connection per component (Prosody) refuses the
// others with ErrConflict: each such connection is given up for good, told
// by a Degraded event, and the pool serves on with the first, rather than
// retry a connection that will never be let in. (The first connection
// retries ErrConflict, as a Supervisor alone does.)
//
//	pool := component.NewPool(2, "tcp", "localhost:5347", "echo.localhost", secret)
//	ep := iq.NewEndpoint(pool, iq.WithLocalJID("echo.localhost"))
//	ep.Callee.Get(ns, "echo", handler)
//	err := pool.Run(ctx, ep, nil)
//
// Its methods are safe for concurrent use; Run runs once.
type Pool struct {
	members  []*Supervisor
	inflight []atomic.Int32 // writes under way, per member
	spell    []atomic.Int64 // per member: when its writes under way last went from none to one (poolClock)
	progress []atomic.Int64 // per member: when a write of it last ended written whole (poolClock)
	took     []atomic.Int64 // per member: how long that write took, from its send to its verdict
	unload   []settled      // per member: a write ended
	next     atomic.Uint64
	run      atomic.Uint64 // the run under way: member<<32 | requests it may still take
	stall    time.Duration // stallAfter; tests may lengthen it
	failFast bool

	mu      sync.Mutex
	change  chan struct{} // closed, and replaced, when a member's stream changes
	stopped error         // set when Run returns
	running bool
	done    chan struct{}
}

// NewPool returns a Pool of n connections to the server at addr, each
// dialed with Dial as domain with secret (WithDialer replaces this, for
// each). The options apply to every connection; WithNotify's function gets
// every connection's events, Event.Index telling which. Nothing happens
// until Run. It panics if n is less than 1 or domain is not a bare domain
// name.
func NewPool(n int, network, addr, domain, secret string, opts ...Option) *Pool {
	if n < 1 {
		panic(fmt.Sprintf("component: NewPool(%d, ...): fewer than one connection", n))
	}
	if j, err := iq.ParseJID(domain); err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
		panic(fmt.Sprintf("component: NewPool: %q is not a domain name", domain))
	}
	p := &Pool{
		members:  make([]*Supervisor, n),
		inflight: make([]atomic.Int32, n),
		spell:    make([]atomic.Int64, n),
		progress: make([]atomic.Int64, n),
		took:     make([]atomic.Int64, n),
		unload:   make([]settled, n),
		stall:    stallAfter,
		change:   make(chan struct{}),
		done:     make(chan struct{}),
	}
	for k := range p.unload {
		p.unload[k] = func(sent int64, err error) { p.wrote(k, sent, err) }
	}
	for i := range p.members {
		s := NewSupervisor(network, addr, domain, secret, opts...)
		p.failFast = s.cfg.failFast
		if s.cfg.poolStall != 0 {
			p.stall = s.cfg.poolStall
		}
		s.cfg.conflictStops = i > 0
		s.cfg.wake = p.wake
		notify, index := s.cfg.notify, i
		s.cfg.notify = func(e Event) {
			e.Index = index
			if index > 0 && e.State == Stopped && errors.Is(e.Err, ErrConflict) {
				e.State = Degraded
			}
			if notify != nil {
				notify(e)
			}
		}
		p.members[i] = s
	}
	return p
}

func (p *Pool) wake() {
	p.mu.Lock()
	close(p.change)
	p.change = make(chan struct{})
	p.mu.Unlock()
}

// Conns returns the streams up, in the order of the connections, nil for
// one that is down, for what an Endpoint does not send (messages,
// presence). Any may end at any time.
func (p *Pool) Conns() []*stream.Conn {
	out := make([]*stream.Conn, len(p.members))
	for i, s := range p.members {
		out[i] = s.Conn()
	}
	return out
}

// index returns the member whose stream conn is, or -1.
func (p *Pool) index(conn *stream.Conn) int {
	for i, s := range p.members {
		if s.Conn() == conn {
			return i
		}
	}
	return -1
}

// SendIQ implements iq.Sender: see Pool for which connection an IQ takes.
// While no connection is up it waits for one, as long as ctx allows, or
// fails at once with ErrNotConnected (WithFailFast). Once Run has returned
// it fails with an error wrapping ErrStopped and iq.ErrClosed.
func (p *Pool) SendIQ(ctx context.Context, i *iq.IQ) error {
	k, conn, err := p.streamFor(ctx, i)
	if err != nil {
		return err
	}
	return p.sendOn(ctx, k, conn, i)
}

// SendIQAsync implements iq.AsyncSender: it is SendIQ for a sender that
// does not wait behind a write under way on the connection the IQ takes
// (see stream.Conn.SendIQAsync); until its verdict, a queued IQ counts
// as a write under way on that connection. The verdict of an IQ queued
// on a connection that then ends wraps iq.ErrConnectionLost, as SendIQ's
// error does.
func (p *Pool) SendIQAsync(ctx context.Context, i *iq.IQ, n iq.Notifier) (queued bool, err error) {
	k, conn, err := p.streamFor(ctx, i)
	if err != nil {
		return false, err
	}
	if k < 0 {
		return sendOnAsync(ctx, conn, i, n, nil, 0)
	}
	return sendOnAsync(ctx, conn, i, n, p.unload[k], p.writing(k))
}

// streamFor returns the connection an IQ sent with ctx takes (see Pool),
// and its index (-1 for a stream's own probe on a connection no longer
// the pool's), waiting for one as SendIQ does.
func (p *Pool) streamFor(ctx context.Context, i *iq.IQ) (int, *stream.Conn, error) {
	if conn, ok := stream.ConnFromContext(ctx); ok {
		// A stream's own probe (its read timeout's ping) goes out on it.
		return p.index(conn), conn, nil
	}
	if i.Type == iq.TypeResult || i.Type == iq.TypeError {
		if conn, ok := ServedOn(ctx); ok && conn.Err() == nil {
			if k := p.index(conn); k >= 0 {
				return k, conn, nil
			}
		}
	}
	for {
		p.mu.Lock()
		change, stopped := p.change, p.stopped
		p.mu.Unlock()
		if stopped != nil {
			return 0, nil, stopped
		}
		if k, conn := p.pick(); conn != nil {
			return k, conn, nil
		}
		if p.failFast {
			return 0, nil, ErrNotConnected
		}
		select {
		case <-change:
		case <-ctx.Done():
			return 0, nil, fmt.Errorf("component: no stream up: %w", ctx.Err())
		}
	}
}

// runLength is how many requests in a row a Pool may send on one
// connection while each finds a write under way there to join (see
// Pool): enough for a write's system call to be shared widely, few enough
// that a run moves on to the next connection soon under any load.
const runLength = 16

// stallAfter is how long a connection may go without a write ending
// written whole, its writes under way all that time, before a Pool counts
// them as backed up and sends no new request on it while another is not;
// a request joins a run only on a connection that has written a stanza
// whole within stallAfter, quickly (see quick).
const stallAfter = time.Millisecond

// poolEpoch is the origin of poolClock.
var poolEpoch = time.Now()

// poolClock is the monotonic time, in ns since poolEpoch.
func poolClock() int64 { return int64(time.Since(poolEpoch)) }

// writing counts a write under way on member k, and returns the time it
// is sent. When it is the only one, that is the beginning of a busy
// spell, stored first: a member whose count has just risen from none does
// not look stalled for an instant.
func (p *Pool) writing(k int) (sent int64) {
	sent = poolClock()
	if p.inflight[k].Load() == 0 {
		p.spell[k].Store(sent)
	}
	p.inflight[k].Add(1)
	return sent
}

// wrote counts the end of a write on member k, sent at sent, with err its
// verdict: one written whole is progress, and how long it took is kept.
// (One that failed is not: an IQ whose context ended while it waited
// behind a stuck write fails too.)
func (p *Pool) wrote(k int, sent int64, err error) {
	if err == nil {
		now := poolClock()
		p.progress[k].Store(now)
		p.took[k].Store(now - sent)
	}
	p.inflight[k].Add(-1)
}

// pick returns the member a request takes (see Pool): the run's, when it
// has a write under way to queue behind and is quick; else the next live
// member round-robin, skipping those with a write under way while one has
// none, or when all are busy the least busy of those not stalled, or when
// all have stalled the one that last wrote a stanza whole. A member picked
// round-robin begins a run.
func (p *Pool) pick() (int, *stream.Conn) {
	now := poolClock() // once for the pick: a clock read costs as much as the rest
	if k, conn := p.joinRun(now); conn != nil {
		return k, conn
	}
	n := uint64(len(p.members))
	start := p.next.Add(1) - 1
	best, bestConn, bestLoad := -1, (*stream.Conn)(nil), int32(0)
	for j := uint64(0); j < n; j++ {
		k := int((start + j) % n)
		conn := p.members[k].Conn()
		if conn == nil || conn.Err() != nil {
			continue
		}
		load := p.inflight[k].Load()
		if load == 0 {
			best, bestConn = k, conn
			break
		}
		if p.stalled(k, now) {
			continue // taken only if every live one has stalled (below)
		}
		if bestConn == nil || load < bestLoad {
			best, bestConn, bestLoad = k, conn, load
		}
	}
	if bestConn == nil {
		// Every live member has stalled: the one that last wrote a stanza
		// whole (a slow link rather than a stuck one, likely), or of
		// those that never did, the least busy.
		var bestProgress int64
		for j := uint64(0); j < n; j++ {
			k := int((start + j) % n)
			conn := p.members[k].Conn()
			if conn == nil || conn.Err() != nil {
				continue
			}
			pr, load := p.progress[k].Load(), p.inflight[k].Load()
			if bestConn == nil || pr > bestProgress || pr == bestProgress && load < bestLoad {
				best, bestConn, bestLoad, bestProgress = k, conn, load, pr
			}
		}
	}
	if bestConn != nil {
		p.run.Store(uint64(best)<<32 | (runLength - 1))
	}
	return best, bestConn
}

// joinRun returns the member of the run under way, and takes one from
// what it may still take, when it is live, has a write under way for the
// request to queue behind, and is quick (see quick) at now; else a nil
// Conn.
func (p *Pool) joinRun(now int64) (int, *stream.Conn) {
	for {
		r := p.run.Load()
		k := int(r >> 32)
		if uint32(r) == 0 || p.inflight[k].Load() == 0 || !p.quick(k, now) {
			return -1, nil
		}
		conn := p.members[k].Conn()
		if conn == nil || conn.Err() != nil {
			return -1, nil
		}
		if p.run.CompareAndSwap(r, r-1) {
			return k, conn
		}
	}
}

// quick reports whether member k is worth joining at now: its last write
// written whole ended within stallAfter, and took less than a quarter of
// it from its send to its verdict (time queued included: a queue that
// deep batches its writes already). A request that joins a write under
// way waits for it, then for the write it leaves in: on a slow link,
// longer than on a connection with no write under way.
func (p *Pool) quick(k int, now int64) bool {
	return now-p.progress[k].Load() < int64(p.stall) && p.took[k].Load() < int64(p.stall)/4
}

// stalled reports whether member k's writes have been backed up for
// stallAfter at now: under way all that time, none written whole.
func (p *Pool) stalled(k int, now int64) bool {
	return p.inflight[k].Load() > 0 && now-max(p.spell[k].Load(), p.progress[k].Load()) >= int64(p.stall)
}

// sendOn sends i on conn, member k's stream (k < 0: not one of ours),
// counting the write as under way meanwhile.
func (p *Pool) sendOn(ctx context.Context, k int, conn *stream.Conn, i *iq.IQ) error {
	if k < 0 {
		return sendOn(ctx, conn, i)
	}
	sent := p.writing(k)
	err := sendOn(ctx, conn, i)
	p.wrote(k, sent, err)
	return err
}

// Run keeps ep served on the pool's connections until ctx ends, Shutdown
// is called or the server refuses the component for good, as
// Supervisor.Run does for one; then it closes ep with its cause and
// returns: nil after Shutdown, ctx's error, or the refusal. The first
// connection's end decides: the others end with it. ep's Sender should be
// p. Run may be called once; it panics if ctx or ep is nil.
func (p *Pool) Run(ctx context.Context, ep *iq.Endpoint, fallback func(context.Context, *iq.Element)) error {
	if ctx == nil || ep == nil {
		panic("component: Pool.Run: nil Context or Endpoint")
	}
	p.mu.Lock()
	if p.running {
		p.mu.Unlock()
		return errors.New("component: Pool.Run called twice")
	}
	p.running = true
	p.mu.Unlock()

	rest, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var startRest sync.Once
	first := p.members[0]
	notify := first.cfg.notify
	// The others are dialed once the first is up, so that on a server
	// that lets in one connection, the first is the one let in.
	first.cfg.notify = func(e Event) {
		if e.State == Connected {
			startRest.Do(func() {
				for _, s := range p.members[1:] {
					wg.Add(1)
					go func() {
						defer wg.Done()
						_ = s.runMember(rest, ep, fallback)
					}()
				}
			})
		}
		notify(e)
	}
	err := first.runMember(ctx, ep, fallback)
	startRest.Do(func() {}) // none starts after this
	if err != nil {
		cancel() // a graceful Shutdown lets the others end gracefully
	}
	wg.Wait()

	stopped := ErrStopped
	if err != nil {
		stopped = errs.New("component: pool stopped: "+errs.Trim(err, "component: "), ErrStopped, err)
	}
	p.mu.Lock()
	p.stopped = errs.New(stopped.Error(), stopped, iq.ErrClosed)
	close(p.change)
	p.change = make(chan struct{})
	p.mu.Unlock()
	ep.CloseWithError(stopped)
	close(p.done)
	return err
}

// Shutdown stops every connection gracefully, as Supervisor.Shutdown
// does for one, at once, and waits for Run to return, which closes the
// Endpoint. When ctx ends first, the streams are closed at once and
// Shutdown returns ctx's error. Shutdown before Run makes Run return at
// once. It is idempotent.
func (p *Pool) Shutdown(ctx context.Context) error {
	if ctx == nil {
		panic("component: Pool.Shutdown: nil Context")
	}
	var wg sync.WaitGroup
	for _, s := range p.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.Shutdown(ctx)
		}()
	}
	wg.Wait()
	p.mu.Lock()
	running := p.running
	p.mu.Unlock()
	if !running {
		return nil
	}
	select {
	case <-p.done:
		return ctx.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runMember runs s as one of a Pool's connections: as Run, except that ep
// stays open when it returns.
func (s *Supervisor) runMember(ctx context.Context, ep *iq.Endpoint, fallback func(context.Context, *iq.Element)) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("component: Supervisor.Run called twice")
	}
	s.running, s.ep = true, ep
	s.mu.Unlock()
	return s.runOwned(ctx, ep, fallback, false)
}

// ServedOn returns the stream that a request handled by an Endpoint under
// a Supervisor or a Pool came in on, from the context its handler gets (or
// any context derived from it): for logs and metrics of which connection
// serves what. A Pool writes the handler's reply on that stream while it
// is up.
func ServedOn(ctx context.Context) (*stream.Conn, bool) {
	conn, ok := ctx.Value(servedOnKey{}).(*stream.Conn)
	return conn, ok
}
