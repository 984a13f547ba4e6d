package component_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/component"
	"github.com/xmpp-iq/iq/stream"
)

// gatedConn is a client transport whose writes the test can hold, as a
// peer that stopped reading would. A held write ends at its write
// deadline, as a socket's does: the stream cuts a write short that way
// when its sender's context ends.
type gatedConn struct {
	net.Conn
	gate    atomic.Pointer[chan struct{}] // while set, writes wait for it to close
	waiting atomic.Int32
	slow    atomic.Int64 // ns each write takes first, as on a slow link

	mu       sync.Mutex
	deadline time.Time
	moved    chan struct{} // closed, and replaced, when the deadline moves
}

func newGatedConn(c net.Conn) *gatedConn {
	return &gatedConn{Conn: c, moved: make(chan struct{})}
}

func (g *gatedConn) SetWriteDeadline(t time.Time) error {
	g.mu.Lock()
	g.deadline = t
	close(g.moved)
	g.moved = make(chan struct{})
	g.mu.Unlock()
	return g.Conn.SetWriteDeadline(t)
}

func (g *gatedConn) SetDeadline(t time.Time) error {
	if err := g.SetWriteDeadline(t); err != nil {
		return err
	}
	return g.Conn.SetDeadline(t)
}

func (g *gatedConn) Write(b []byte) (int, error) {
	if d := g.slow.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	if ch := g.gate.Load(); ch != nil {
		g.waiting.Add(1)
		defer g.waiting.Add(-1)
		if err := g.hold(*ch); err != nil {
			return 0, err
		}
	}
	return g.Conn.Write(b)
}

// hold waits until open closes, or the write deadline passes.
func (g *gatedConn) hold(open chan struct{}) error {
	for {
		g.mu.Lock()
		d, moved := g.deadline, g.moved
		g.mu.Unlock()
		var expired <-chan time.Time
		if !d.IsZero() {
			wait := time.Until(d)
			if wait <= 0 {
				return os.ErrDeadlineExceeded
			}
			t := time.NewTimer(wait)
			defer t.Stop()
			expired = t.C
		}
		select {
		case <-open:
			return nil
		case <-moved:
		case <-expired:
			return os.ErrDeadlineExceeded
		}
	}
}

// poolDialer is fakeDialer for a Pool: each stream's writes can be held.
type poolDialer struct {
	results chan error
	made    chan poolConn
}

type poolConn struct {
	peer *peer
	gate *gatedConn
}

func (d *poolDialer) dial(ctx context.Context) (*stream.Conn, error) {
	select {
	case err := <-d.results:
		if err != nil {
			return nil, err
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	a, b := net.Pipe()
	g := newGatedConn(a)
	d.made <- poolConn{peer: newPeer(b), gate: g}
	return stream.New(g, stream.WithNamespace(iq.NSComponent), stream.WithLocalAddress("svc.example"), stream.WithCloseGrace(0)), nil
}

func (d *poolDialer) fail(t *testing.T, err error) {
	t.Helper()
	select {
	case d.results <- err:
	case <-time.After(waitLong):
		t.Fatal("the Pool did not dial")
	}
}

func (d *poolDialer) accept(t *testing.T) poolConn {
	t.Helper()
	d.fail(t, nil)
	c := <-d.made
	t.Cleanup(func() { _ = c.peer.conn.Close(); <-c.peer.eof })
	return c
}

// poolRig is a Pool of two on a fake clock and dialer, serving an
// Endpoint with one handler, its events on a channel.
type poolRig struct {
	pool   *component.Pool
	ep     *iq.Endpoint
	clock  *fakeClock
	dialer *poolDialer
	events chan component.Event
	runErr chan error
}

func newPoolRig(t *testing.T, opts ...component.Option) *poolRig {
	t.Helper()
	r := &poolRig{clock: newFakeClock(), dialer: &poolDialer{results: make(chan error), made: make(chan poolConn, 1)},
		events: make(chan component.Event, 64), runErr: make(chan error, 1)}
	opts = append([]component.Option{
		component.WithDialer(r.dialer.dial), component.WithClock(r.clock), component.WithRand(top),
		component.WithBackoff(100*ms, time.Second), component.WithHealthyAfter(10 * time.Second),
		component.WithNotify(func(e component.Event) { r.events <- e }),
	}, opts...)
	r.pool = component.NewPool(2, "tcp", "127.0.0.1:1", "svc.example", "s", opts...)
	r.ep = iq.NewEndpoint(r.pool, iq.WithLocalJID("svc.example"), iq.WithTimeout(time.Minute))
	r.ep.Callee.Get("urn:t", "echo", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		if conn, ok := component.ServedOn(ctx); !ok || conn == nil {
			return nil, iq.NewError(iq.Cancel, iq.InternalServerError, "no ServedOn")
		}
		return iq.NewElement("urn:t", "echo").AppendText(req.Payload.Text()), nil
	})
	go func() { r.runErr <- r.pool.Run(context.Background(), r.ep, nil) }()
	t.Cleanup(func() {
		_ = r.pool.Shutdown(context.Background())
		select {
		case <-r.runErr:
		case <-time.After(waitLong):
			t.Error("Run did not return after Shutdown")
		}
	})
	return r
}

func (r *poolRig) event(t *testing.T, want component.State, index int) component.Event {
	t.Helper()
	select {
	case e := <-r.events:
		require.Equal(t, want, e.State, "event %+v", e)
		require.Equal(t, index, e.Index, "event %+v", e)
		return e
	case <-time.After(waitLong):
		t.Fatalf("no %v event", want)
	}
	return component.Event{}
}

// up connects both connections of the pool.
func (r *poolRig) up(t *testing.T) (poolConn, poolConn) {
	t.Helper()
	c0 := r.dialer.accept(t)
	r.event(t, component.Connected, 0)
	c1 := r.dialer.accept(t)
	r.event(t, component.Connected, 1)
	return c0, c1
}

func (r *poolRig) get(id string) chan error {
	errc := make(chan error, 1)
	go func() {
		_, err := r.ep.Caller.Request(context.Background(), &iq.IQ{ID: id, Type: iq.TypeGet, To: "svc2.example", Payload: iq.NewElement("urn:t", "q")})
		errc <- err
	}()
	return errc
}

// written waits until the pool counts no write under way: requests
// sent one at a time, each once the one before has been written,
// alternate over the connections.
func (r *poolRig) written(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool { return component.WritesUnderWay(r.pool) == 0 },
		waitLong, time.Millisecond, "writes under way")
}

// warm sends one request on each connection in turn, each written whole
// and answered, and waits until the pool counts their writes done: the
// next pick is the first connection again.
func (r *poolRig) warm(t *testing.T, conns ...poolConn) {
	t.Helper()
	for k, c := range conns {
		id := fmt.Sprint("warm", k)
		errc := r.get(id)
		require.Equal(t, id, c.peer.next(t).ID)
		c.peer.write(t, `<iq type="result" id="`+id+`" from="svc2.example"/>`)
		require.NoError(t, recvErr(t, errc))
	}
	r.written(t)
}

// arrival waits for the next IQ on either of two peers, and says on
// which.
func arrival(t *testing.T, peers ...*peer) (int, *iq.IQ) {
	t.Helper()
	var el *iq.Element
	k := 0
	select {
	case el = <-peers[0].elems:
	case el = <-peers[1].elems:
		k = 1
	case <-time.After(waitLong):
		t.Fatal("nothing sent on any stream")
	}
	b, err := el.AppendXML(nil)
	require.NoError(t, err)
	out := new(iq.IQ)
	require.NoError(t, xml.Unmarshal(b, out))
	return k, out
}

// TestPoolRoundRobin: requests alternate over the two connections; a
// reply that lands on the other connection resolves its request; a
// handler answers on the connection its request came in on.
func TestPoolRoundRobin(t *testing.T) {
	leakCheck(t)
	r := newPoolRig(t)
	c0, c1 := r.up(t)
	peers := []*peer{c0.peer, c1.peer}
	var spread [2]int
	for n := range 10 {
		r.written(t)
		id := fmt.Sprint("rr", n)
		errc := r.get(id)
		k, req := arrival(t, peers...)
		assert.Equal(t, id, req.ID)
		spread[k]++
		// The reply comes back on the other connection, as ejabberd may do.
		peers[1-k].write(t, `<iq type="result" id="`+id+`" from="svc2.example"/>`)
		assert.NoError(t, recvErr(t, errc))
	}
	assert.Equal(t, [2]int{5, 5}, spread)

	for k, p := range peers {
		id := fmt.Sprint("in", k)
		p.write(t, `<iq type="get" id="`+id+`" from="a@example" to="svc.example"><echo xmlns="urn:t">hi</echo></iq>`)
		got, reply := arrival(t, peers...)
		assert.Equal(t, k, got, "the reply goes out on the connection its request came in on")
		assert.Equal(t, id, reply.ID)
		assert.Equal(t, iq.TypeResult, reply.Type)
	}
	assert.Len(t, r.pool.Conns(), 2)
}

// holdWrites holds c's writes until the function returned is called, or
// the test ends.
func holdWrites(t *testing.T, c poolConn) (release func()) {
	hold := make(chan struct{})
	c.gate.gate.Store(&hold)
	release = sync.OnceFunc(func() {
		c.gate.gate.Store(nil)
		close(hold)
	})
	t.Cleanup(release)
	return release
}

// stall waits until a write stuck now counts as backed up.
func stall() { time.Sleep(2 * component.StallAfter) }

// TestPoolSkipsBackedUpConnection: while a write is stuck on the first
// connection, requests go out on the second.
func TestPoolSkipsBackedUpConnection(t *testing.T) {
	leakCheck(t)
	r := newPoolRig(t)
	c0, c1 := r.up(t)
	hold := make(chan struct{})
	c0.gate.gate.Store(&hold)
	stuck := r.get("stuck") // the first pick: connection 0
	for c0.gate.waiting.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	stall()
	for n := range 4 {
		id := fmt.Sprint("free", n)
		errc := r.get(id)
		assert.Equal(t, id, c1.peer.next(t).ID)
		c1.peer.write(t, `<iq type="result" id="`+id+`" from="svc2.example"/>`)
		assert.NoError(t, recvErr(t, errc))
	}
	c0.gate.gate.Store(nil)
	close(hold)
	assert.Equal(t, "stuck", c0.peer.next(t).ID)
	c0.peer.write(t, `<iq type="result" id="stuck" from="svc2.example"/>`)
	assert.NoError(t, recvErr(t, stuck))
}

// TestPoolConnectionDies: a connection that ends fails the requests sent
// on it, and only those; the other serves on alone until the lost one is
// dialed again.
func TestPoolConnectionDies(t *testing.T) {
	leakCheck(t)
	r := newPoolRig(t)
	c0, c1 := r.up(t)
	on0 := r.get("on0")
	assert.Equal(t, "on0", c0.peer.next(t).ID)
	r.written(t)
	on1 := r.get("on1")
	assert.Equal(t, "on1", c1.peer.next(t).ID)

	_ = c1.peer.conn.Close()
	err := recvErr(t, on1)
	assert.ErrorIs(t, err, iq.ErrConnectionLost)
	assert.ErrorIs(t, err, iq.ErrClosed)
	assert.Equal(t, 100*ms, r.event(t, component.Disconnected, 1).RetryIn)
	assert.Nil(t, r.pool.Conns()[1])

	c0.peer.write(t, `<iq type="result" id="on0" from="svc2.example"/>`)
	assert.NoError(t, recvErr(t, on0), "the other connection's request lives on")
	for n := range 3 {
		id := fmt.Sprint("alone", n)
		errc := r.get(id)
		assert.Equal(t, id, c0.peer.next(t).ID)
		c0.peer.write(t, `<iq type="result" id="`+id+`" from="svc2.example"/>`)
		assert.NoError(t, recvErr(t, errc))
	}

	r.clock.sleep(t, 100*ms)
	c1 = r.dialer.accept(t)
	r.event(t, component.Connected, 1)
	var spread [2]int
	for n := range 4 {
		r.written(t)
		id := fmt.Sprint("again", n)
		errc := r.get(id)
		k, req := arrival(t, c0.peer, c1.peer)
		assert.Equal(t, id, req.ID)
		spread[k]++
		[]*peer{c0.peer, c1.peer}[k].write(t, `<iq type="result" id="`+id+`" from="svc2.example"/>`)
		assert.NoError(t, recvErr(t, errc))
	}
	assert.Equal(t, [2]int{2, 2}, spread)
}

// TestPoolDegradesOnConflict: a server that lets in one connection per
// component refuses the second with conflict; the pool gives it up, says
// so, and serves on the first, without dialing it again.
func TestPoolDegradesOnConflict(t *testing.T) {
	leakCheck(t)
	r := newPoolRig(t)
	c0 := r.dialer.accept(t)
	r.event(t, component.Connected, 0)
	r.dialer.fail(t, component.ErrConflict)
	e := r.event(t, component.Degraded, 1)
	assert.ErrorIs(t, e.Err, component.ErrConflict)
	assert.Equal(t, "degraded", e.State.String())
	select {
	case r.dialer.results <- nil:
		t.Fatal("the refused connection was dialed again")
	case <-time.After(50 * ms):
	}
	for n := range 3 {
		id := fmt.Sprint("one", n)
		errc := r.get(id)
		assert.Equal(t, id, c0.peer.next(t).ID)
		c0.peer.write(t, `<iq type="result" id="`+id+`" from="svc2.example"/>`)
		assert.NoError(t, recvErr(t, errc))
	}
}

// TestPoolFirstConnectionRetriesConflict: the first connection retries
// conflict, as a Supervisor alone does (the server may still hold a dead
// connection of ours).
func TestPoolFirstConnectionRetriesConflict(t *testing.T) {
	leakCheck(t)
	r := newPoolRig(t)
	r.dialer.fail(t, component.ErrConflict)
	assert.ErrorIs(t, r.event(t, component.Disconnected, 0).Err, component.ErrConflict)
	r.clock.sleep(t, 100*ms)
	r.up(t)
}

// TestPoolStops: after Shutdown, Run returns nil, the Endpoint is closed,
// and sending fails with ErrStopped; a permanent refusal stops the pool
// with it.
func TestPoolStops(t *testing.T) {
	t.Run("shutdown", func(t *testing.T) {
		leakCheck(t)
		r := newPoolRig(t)
		r.up(t)
		require.NoError(t, r.pool.Shutdown(context.Background()))
		assert.NoError(t, recvErr(t, r.runErr))
		r.runErr <- nil
		assert.ErrorIs(t, r.pool.SendIQ(context.Background(), &iq.IQ{}), component.ErrStopped)
		_, err := r.ep.Caller.Request(context.Background(), &iq.IQ{Type: iq.TypeGet, Payload: iq.NewElement("urn:t", "q")})
		assert.ErrorIs(t, err, iq.ErrClosed)
	})
	t.Run("not authorized", func(t *testing.T) {
		leakCheck(t)
		r := newPoolRig(t)
		r.dialer.fail(t, component.ErrNotAuthorized)
		err := recvErr(t, r.runErr)
		assert.ErrorIs(t, err, component.ErrNotAuthorized)
		r.runErr <- err
		assert.ErrorIs(t, r.pool.SendIQ(context.Background(), &iq.IQ{}), iq.ErrClosed)
	})
	t.Run("run twice", func(t *testing.T) {
		leakCheck(t)
		r := newPoolRig(t)
		r.up(t)
		assert.EqualError(t, r.pool.Run(context.Background(), r.ep, nil), "component: Pool.Run called twice")
	})
	t.Run("fail fast while down", func(t *testing.T) {
		leakCheck(t)
		r := newPoolRig(t, component.WithFailFast())
		assert.ErrorIs(t, r.pool.SendIQ(context.Background(), &iq.IQ{}), component.ErrNotConnected)
	})
	t.Run("wait while down", func(t *testing.T) {
		leakCheck(t)
		r := newPoolRig(t)
		ctx, cancel := context.WithTimeout(context.Background(), 20*ms)
		defer cancel()
		assert.ErrorIs(t, r.pool.SendIQ(ctx, &iq.IQ{}), context.DeadlineExceeded)
	})
}

func TestPoolPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func()
		msg  string
	}{
		{"no connection", func() { component.NewPool(0, "tcp", "x:1", "svc.example", "s") }, "component: NewPool(0, ...): fewer than one connection"},
		{"not a domain", func() { component.NewPool(2, "tcp", "x:1", "a@b", "s") }, `component: NewPool: "a@b" is not a domain name`},
		{"nil context", func() {
			//lint:ignore SA1012 the nil is the test
			_ = component.NewPool(1, "tcp", "x:1", "svc.example", "s").Run(nil, nil, nil)
		}, "component: Pool.Run: nil Context or Endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.PanicsWithValue(t, tc.msg, tc.f) })
	}
}

// notifier records the verdicts an AsyncSender tells it.
type notifier chan error

func (n notifier) Sent(err error) { n <- err }

var (
	_ iq.AsyncSender = (*component.Pool)(nil)
	_ iq.AsyncSender = (*component.Supervisor)(nil)
)

// stuckPair gates both connections' writes and makes one request stuck
// in a write on each; closing the returned channel lets them go.
func (r *poolRig) stuckPair(t *testing.T, c0, c1 poolConn) (hold chan struct{}, stuck []chan error) {
	t.Helper()
	hold = make(chan struct{})
	c0.gate.gate.Store(&hold)
	c1.gate.gate.Store(&hold)
	stuck = []chan error{r.get("s0")}
	require.Eventually(t, func() bool { return c0.gate.waiting.Load()+c1.gate.waiting.Load() == 1 },
		waitLong, time.Millisecond, "one stuck write")
	stall() // else s1 would join s0's write, as a run
	stuck = append(stuck, r.get("s1"))
	require.Eventually(t, func() bool { return c0.gate.waiting.Load() == 1 && c1.gate.waiting.Load() == 1 },
		waitLong, time.Millisecond, "one stuck write on each connection")
	stall()
	return hold, stuck
}

// queueBehindStuckPair makes a stuck write on each connection (see
// stuckPair), then queues a set with id q through SendIQAsync, whose
// verdict goes to the notifier returned.
func (r *poolRig) queueBehindStuckPair(t *testing.T, c0, c1 poolConn) (hold chan struct{}, stuck []chan error, n notifier) {
	t.Helper()
	hold, stuck = r.stuckPair(t, c0, c1)
	n = make(notifier, 1)
	queued, err := r.pool.SendIQAsync(context.Background(),
		&iq.IQ{ID: "q", Type: iq.TypeSet, To: "svc2.example", Payload: iq.NewElement("urn:t", "q")}, n)
	require.NoError(t, err)
	require.True(t, queued, "both connections have a write under way")
	return hold, stuck, n
}

// An IQ a Pool's SendIQAsync queues behind a stuck write counts as a
// write under way on its connection until its verdict: the next request
// goes out on the other connection.
func TestPoolQueuedIQCountsAsAWriteUnderWay(t *testing.T) {
	leakCheck(t)
	r := newPoolRig(t)
	c0, c1 := r.up(t)
	hold, stuck, n := r.queueBehindStuckPair(t, c0, c1)
	require.Equal(t, 3, component.WritesUnderWay(r.pool), "two stuck, one queued")
	next := r.get("next")
	require.Eventually(t, func() bool { return component.WritesUnderWay(r.pool) == 4 },
		waitLong, time.Millisecond, "next picked its connection and queued")
	c0.gate.gate.Store(nil)
	c1.gate.gate.Store(nil)
	close(hold)
	on := map[string]int{}
	for range 4 {
		k, out := arrival(t, c0.peer, c1.peer)
		on[out.ID] = k
	}
	require.Len(t, on, 4)
	assert.NotEqual(t, on["q"], on["next"], "next avoided the connection q was queued on")
	require.NoError(t, recvErr(t, n))
	for _, id := range []string{"s0", "s1", "next"} {
		peer := c0.peer
		if on[id] == 1 {
			peer = c1.peer
		}
		peer.write(t, `<iq type="result" id="`+id+`" from="svc2.example"/>`)
	}
	for _, errc := range append(stuck, next) {
		assert.NoError(t, recvErr(t, errc))
	}
}

// An IQ queued on a connection that then ends is told an error wrapping
// iq.ErrConnectionLost, as SendIQ's error on such a connection does.
func TestPoolQueuedIQLostWithItsConnection(t *testing.T) {
	leakCheck(t)
	r := newPoolRig(t)
	c0, c1 := r.up(t)
	hold, stuck, n := r.queueBehindStuckPair(t, c0, c1)
	_ = c0.peer.conn.Close()
	_ = c1.peer.conn.Close()
	err := recvErr(t, n)
	assert.ErrorIs(t, err, iq.ErrConnectionLost)
	assert.ErrorIs(t, err, iq.ErrClosed)
	c0.gate.gate.Store(nil)
	c1.gate.gate.Store(nil)
	close(hold)
	for _, errc := range stuck {
		assert.ErrorIs(t, recvErr(t, errc), iq.ErrConnectionLost)
	}
}

// TestPoolRunJoinsWriteUnderWay: a request joins the write under way on
// the connection the one before it took, RunLength in a row at most; the
// next goes out on the other connection. (Writes that stall for
// StallAfter end the run: TestPoolSkipsBackedUpConnection.)
func TestPoolRunJoinsWriteUnderWay(t *testing.T) {
	leakCheck(t)
	r := newPoolRig(t, component.WithStallAfter(time.Hour)) // the held write never stalls
	c0, c1 := r.up(t)
	hold := make(chan struct{})
	c0.gate.gate.Store(&hold)
	run := []chan error{r.get("r0")} // the first pick: connection 0
	require.Eventually(t, func() bool { return c0.gate.waiting.Load() == 1 },
		waitLong, time.Millisecond, "r0 under way on connection 0")
	for n := 1; n < component.RunLength; n++ {
		run = append(run, r.get(fmt.Sprint("r", n)))
		want := n + 1
		require.Eventually(t, func() bool { return component.WritesUnderWay(r.pool) == want },
			waitLong, time.Millisecond, "r%d joined the run", n)
	}
	after := r.get("after")
	assert.Equal(t, "after", c1.peer.next(t).ID, "the request after a full run goes out on the other connection")
	c1.peer.write(t, `<iq type="result" id="after" from="svc2.example"/>`)
	assert.NoError(t, recvErr(t, after))

	c0.gate.gate.Store(nil)
	close(hold)
	// The run's stanzas queued in the order their senders reached the
	// stream, which need not be the order the test counted them in.
	var want, got []string
	for n := range run {
		want = append(want, fmt.Sprint("r", n))
		id := c0.peer.next(t).ID
		got = append(got, id)
		c0.peer.write(t, `<iq type="result" id="`+id+`" from="svc2.example"/>`)
	}
	assert.ElementsMatch(t, want, got, "the run went out on connection 0")
	for _, errc := range run {
		assert.NoError(t, recvErr(t, errc))
	}
}

// A request that fails on a stuck connection (its context ended while
// it waited) is no progress: the run there ends at StallAfter all the
// same, and the next request goes out on the idle connection.
func TestBugPoolRunResumedOnStuckConnection(t *testing.T) {
	leakCheck(t)
	const stall = 50 * ms
	r := newPoolRig(t, component.WithStallAfter(stall))
	c0, c1 := r.up(t)
	r.warm(t, c0, c1) // a run may join either; the next pick is connection 0

	release := holdWrites(t, c0)
	send := func(ctx context.Context, id string) chan error {
		errc := make(chan error, 1)
		go func() {
			errc <- r.pool.SendIQ(ctx, &iq.IQ{ID: id, Type: iq.TypeSet, To: "svc2.example", Payload: iq.NewElement("urn:t", "q")})
		}()
		return errc
	}
	short, cancel := context.WithTimeout(context.Background(), 3*stall)
	defer cancel()
	r0 := send(context.Background(), "r0") // a run on connection 0: the first pick after warm
	require.Eventually(t, func() bool { return c0.gate.waiting.Load() == 1 }, waitLong, time.Millisecond, "r0 held")
	r1 := send(short, "r1") // joins r0's write
	require.Eventually(t, func() bool { return component.WritesUnderWay(r.pool) == 2 }, waitLong, time.Millisecond, "r1 joined")
	require.ErrorIs(t, recvErr(t, r1), context.DeadlineExceeded)

	r2 := send(context.Background(), "r2")
	assert.Equal(t, "r2", c1.peer.next(t).ID, "connection 0 has written nothing for longer than StallAfter")
	assert.NoError(t, recvErr(t, r2))

	release()
	assert.NoError(t, recvErr(t, r0))
}

// With one connection of two stuck (its peer reads nothing), requests
// with a short deadline are lost on it at the rate they were before runs:
// about one per deadline and sender, while the other connection carries
// the rest. (Counting a failed write as progress once sent nearly every
// request to the stuck connection.)
func TestBugPoolStuckConnectionTakesTheLoad(t *testing.T) {
	leakCheck(t)
	r := newPoolRig(t)
	c0, c1 := r.up(t)
	release := holdWrites(t, c0)
	stop, drained := make(chan struct{}), make(chan struct{})
	go func() { // the healthy peer reads all, answers none
		defer close(drained)
		for {
			select {
			case <-c1.peer.elems:
			case <-stop:
				return
			}
		}
	}()
	const senders, timeout = 4, 100 * ms
	var lost, sent atomic.Int64
	var wg sync.WaitGroup
	until := time.Now().Add(5 * timeout)
	for w := range senders {
		wg.Go(func() {
			for n := 0; time.Now().Before(until); n++ {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				err := r.pool.SendIQ(ctx, &iq.IQ{ID: fmt.Sprint(w, "-", n), Type: iq.TypeSet, To: "svc2.example", Payload: iq.NewElement("urn:t", "q")})
				cancel()
				switch {
				case err == nil:
					sent.Add(1)
				case errors.Is(err, context.DeadlineExceeded):
					lost.Add(1)
				default:
					t.Errorf("send: %v", err)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	<-drained
	release()
	t.Logf("lost on the stuck connection: %d; written on the other: %d", lost.Load(), sent.Load())
	assert.LessOrEqual(t, lost.Load(), int64(senders*(5+2)), "about one per deadline and sender")
	assert.Greater(t, sent.Load(), 100*lost.Load())
}

// A run does not join a slow link: a request that joins a write under way
// waits for it, then for its own, while a request on an idle connection
// waits for one write. A request after one sent on a connection whose
// writes take long goes to the idle connection, as before runs.
func TestBugPoolRunJoinedSlowConnection(t *testing.T) {
	leakCheck(t)
	const stall = 400 * ms // quick writes take under 100 ms
	r := newPoolRig(t, component.WithStallAfter(stall))
	c0, c1 := r.up(t)
	c0.gate.slow.Store(int64(150 * ms))
	r.warm(t, c0, c1)       // 150 ms on connection 0
	slow0 := r.get("slow0") // round-robin: connection 0, a slow write
	require.Eventually(t, func() bool { return component.WritesUnderWay(r.pool) == 1 }, waitLong, time.Millisecond)
	next := r.get("next")
	assert.Equal(t, "next", c1.peer.next(t).ID, "a request after one on a slow link goes to the idle connection")
	c1.peer.write(t, `<iq type="result" id="next" from="svc2.example"/>`)
	assert.NoError(t, recvErr(t, next))
	assert.Equal(t, "slow0", c0.peer.next(t).ID)
	c0.peer.write(t, `<iq type="result" id="slow0" from="svc2.example"/>`)
	assert.NoError(t, recvErr(t, slow0))
}

// When every live connection has stalled, the one that last wrote a
// stanza whole takes the request: a slow link rather than a stuck one.
// (The least busy of them was taken, often the stuck one.)
func TestBugPoolStuckBesideSlowConnection(t *testing.T) {
	leakCheck(t)
	const stall = 20 * ms
	r := newPoolRig(t, component.WithStallAfter(stall))
	c0, c1 := r.up(t)
	release := holdWrites(t, c0)
	stuck := r.get("stuck") // connection 0, held until the end
	require.Eventually(t, func() bool { return c0.gate.waiting.Load() == 1 }, waitLong, time.Millisecond)
	c1.gate.slow.Store(int64(10 * stall))
	errs := map[string]chan error{}
	send := func(id string, want int) {
		errs[id] = r.get(id)
		require.Eventually(t, func() bool { return component.WritesUnderWay(r.pool) == want },
			waitLong, time.Millisecond, "%s under way", id)
	}
	// w1 goes to connection 1 (the other is busy), and once written whole,
	// w2 too (it is free again): slow writes, but writes.
	send("w1", 2)
	require.Eventually(t, func() bool { return component.WritesUnderWay(r.pool) == 1 }, waitLong, time.Millisecond, "w1 written")
	send("w2", 2)
	time.Sleep(2 * stall) // both connections have stalled now
	send("w3", 3)
	send("w4", 4) // connection 1 is the busier now
	for _, id := range []string{"w1", "w2", "w3", "w4"} {
		assert.Equal(t, id, c1.peer.next(t).ID, "all but the first request go out on the slow connection")
		c1.peer.write(t, `<iq type="result" id="`+id+`" from="svc2.example"/>`)
		assert.NoError(t, recvErr(t, errs[id]))
	}
	release()
	assert.Equal(t, "stuck", c0.peer.next(t).ID)
	c0.peer.write(t, `<iq type="result" id="stuck" from="svc2.example"/>`)
	assert.NoError(t, recvErr(t, stuck))
}
