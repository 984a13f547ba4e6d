package component_test

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/component"
	"github.com/xmpp-iq/iq/stream"
)

// leakCheck checks for leaked goroutines after every other cleanup.
func leakCheck(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// top makes the jitter draw the top of its range, so that each wait is
// the backoff's ceiling.
func top(n int64) int64 { return n - 1 }

func TestBackoffSchedule(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		name     string
		n        int
		min, max time.Duration
		rnd      func(int64) int64
		want     time.Duration
	}{
		{"first wait is at most min", 0, 100 * ms, time.Second, top, 100 * ms},
		{"doubles", 1, 100 * ms, time.Second, top, 200 * ms},
		{"doubles again", 3, 100 * ms, time.Second, top, 800 * ms},
		{"capped", 4, 100 * ms, time.Second, top, time.Second},
		{"capped far out", 61, 100 * ms, time.Second, top, time.Second},
		{"no overflow", 1000, 100 * ms, time.Hour, top, time.Hour},
		{"min equals max", 5, time.Second, time.Second, top, time.Second},
		{"full jitter reaches zero", 3, 100 * ms, time.Second, func(int64) int64 { return 0 }, 0},
		{"jitter in between", 2, 100 * ms, time.Second, func(n int64) int64 { return n / 2 }, 200 * ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked int64
			got := component.Backoff(tc.n, tc.min, tc.max, func(n int64) int64 { asked = n; return tc.rnd(n) })
			assert.Equal(t, tc.want, got)
			assert.LessOrEqual(t, got, tc.max)
			assert.GreaterOrEqual(t, got, time.Duration(0))
			assert.LessOrEqual(t, time.Duration(asked-1), tc.max, "the range drawn from passes the cap")
		})
	}
}

func TestSupervisorOptionsPanic(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func()
		msg  string
	}{
		{"negative backoff", func() { component.WithBackoff(-1, 0) }, "component: WithBackoff(-1ns, 0s): negative duration"},
		{"max below min", func() { component.WithBackoff(time.Second, time.Millisecond) }, "component: WithBackoff(1s, 1ms): max is less than min"},
		{"negative healthy", func() { component.WithHealthyAfter(-time.Second) }, "component: WithHealthyAfter(-1s): negative duration"},
		{"nil dialer", func() { component.WithDialer(nil) }, "component: WithDialer: nil DialFunc"},
		{"not a domain", func() { component.NewSupervisor("tcp", "x:1", "a@b", "s") }, `component: NewSupervisor: "a@b" is not a domain name`},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.PanicsWithValue(t, tc.msg, tc.f) })
	}
}

// fakeClock is a clock whose time moves only when the test says, and
// whose waits end only when the test fires them.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps chan sleep
}

type sleep struct {
	d    time.Duration
	fire chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1_000_000, 0), sleeps: make(chan sleep, 16)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) (<-chan time.Time, func()) {
	s := sleep{d: d, fire: make(chan time.Time, 1)}
	c.sleeps <- s
	return s.fire, func() {}
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// sleep waits for the Supervisor to wait, checks how long, and ends the
// wait.
func (c *fakeClock) sleep(t *testing.T, want time.Duration) {
	t.Helper()
	select {
	case s := <-c.sleeps:
		assert.Equal(t, want, s.d, "backoff")
		c.advance(s.d)
		s.fire <- c.Now()
	case <-time.After(waitLong):
		t.Fatalf("the Supervisor did not wait %v", want)
	}
}

// peer is the server's end of a stream a fakeDialer handed out.
type peer struct {
	conn  net.Conn
	elems chan *iq.Element
	eof   chan struct{}
}

func newPeer(c net.Conn) *peer {
	p := &peer{conn: c, elems: make(chan *iq.Element, 64), eof: make(chan struct{})}
	go func() {
		defer close(p.eof)
		dec := xml.NewDecoder(io.MultiReader(strings.NewReader(`<stream:stream xmlns="jabber:component:accept" xmlns:stream="http://etherx.jabber.org/streams">`), c))
		for {
			tok, err := dec.Token()
			if err != nil {
				_, _ = io.Copy(io.Discard, c)
				return
			}
			if ee, ok := tok.(xml.EndElement); ok && ee.Name.Local == "stream" {
				_ = c.Close() // the server's answer to our closing tag
			}
			if se, ok := tok.(xml.StartElement); ok && se.Name.Local != "stream" {
				el := new(iq.Element)
				if dec.DecodeElement(el, &se) != nil {
					_, _ = io.Copy(io.Discard, c)
					return
				}
				p.elems <- el
			}
		}
	}()
	return p
}

func (p *peer) next(t *testing.T) *iq.IQ {
	t.Helper()
	select {
	case el := <-p.elems:
		b, err := el.AppendXML(nil)
		require.NoError(t, err)
		out := new(iq.IQ)
		require.NoError(t, xml.Unmarshal(b, out))
		return out
	case <-time.After(waitLong):
		t.Fatal("nothing sent on the stream")
	}
	return nil
}

func (p *peer) write(t *testing.T, s string) {
	t.Helper()
	_ = p.conn.SetWriteDeadline(time.Now().Add(waitLong))
	_, err := io.WriteString(p.conn, s)
	require.NoError(t, err)
}

// fakeDialer hands out, dial by dial, what the test sends it: an error, or
// a new stream whose peer it returns.
type fakeDialer struct {
	results chan error // nil: a stream
	peers   chan *peer
}

func newFakeDialer() *fakeDialer {
	return &fakeDialer{results: make(chan error), peers: make(chan *peer, 1)}
}

func (d *fakeDialer) dial(ctx context.Context) (*stream.Conn, error) {
	select {
	case err := <-d.results:
		if err != nil {
			return nil, err
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	a, b := net.Pipe()
	d.peers <- newPeer(b)
	return stream.New(a, stream.WithNamespace(iq.NSComponent), stream.WithLocalAddress("svc.example"), stream.WithCloseGrace(0)), nil
}

// fail makes the next dial fail with err.
func (d *fakeDialer) fail(t *testing.T, err error) {
	t.Helper()
	select {
	case d.results <- err:
	case <-time.After(waitLong):
		t.Fatal("the Supervisor did not dial")
	}
}

// accept makes the next dial succeed and returns the stream's peer.
func (d *fakeDialer) accept(t *testing.T) *peer {
	d.fail(t, nil)
	p := <-d.peers
	t.Cleanup(func() { _ = p.conn.Close(); <-p.eof })
	return p
}

// rig is a Supervisor on a fake clock and dialer, serving an Endpoint
// with one handler, its events on a channel.
type rig struct {
	sup    *component.Supervisor
	ep     *iq.Endpoint
	clock  *fakeClock
	dialer *fakeDialer
	events chan component.Event
	runErr chan error
}

const ms = time.Millisecond

func newRig(t *testing.T, opts ...component.Option) *rig {
	t.Helper()
	r := &rig{clock: newFakeClock(), dialer: newFakeDialer(), events: make(chan component.Event, 64), runErr: make(chan error, 1)}
	opts = append([]component.Option{
		component.WithDialer(r.dialer.dial), component.WithClock(r.clock), component.WithRand(top),
		component.WithBackoff(100*ms, time.Second), component.WithHealthyAfter(10 * time.Second),
		component.WithNotify(func(e component.Event) { r.events <- e }),
	}, opts...)
	r.sup = component.NewSupervisor("tcp", "127.0.0.1:1", "svc.example", "s", opts...)
	r.ep = iq.NewEndpoint(r.sup, iq.WithLocalJID("svc.example"), iq.WithTimeout(time.Minute))
	r.ep.Callee.Get("urn:t", "echo", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		return iq.NewElement("urn:t", "echo").AppendText(req.Payload.Text()), nil
	})
	go func() { r.runErr <- r.sup.Run(context.Background(), r.ep, nil) }()
	t.Cleanup(func() {
		_ = r.sup.Shutdown(context.Background())
		select {
		case <-r.runErr:
		case <-time.After(waitLong):
			t.Error("Run did not return after Shutdown")
		}
	})
	return r
}

func (r *rig) event(t *testing.T, want component.State) component.Event {
	t.Helper()
	select {
	case e := <-r.events:
		require.Equal(t, want, e.State, "event %+v", e)
		return e
	case <-time.After(waitLong):
		t.Fatalf("no %v event", want)
	}
	return component.Event{}
}

func (r *rig) get(id string) chan error {
	errc := make(chan error, 1)
	go func() {
		_, err := r.ep.Caller.Request(context.Background(), &iq.IQ{ID: id, Type: iq.TypeGet, To: "svc2.example", Payload: iq.NewElement("urn:t", "q")})
		errc <- err
	}()
	return errc
}

func recvErr(t *testing.T, errc chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(waitLong):
		t.Fatal("no result")
	}
	return nil
}

// TestSupervisorStateMachine walks a Supervisor through failed dials, a
// stream that drops with a request on it, a request made while no stream
// is up, a healthy stream, and a permanent refusal, checking each wait.
func TestSupervisorStateMachine(t *testing.T) {
	leakCheck(t)
	r := newRig(t)

	// Failed dials wait longer each time; conflict is retried.
	r.dialer.fail(t, errors.New("dial tcp: connection refused"))
	assert.Equal(t, 100*ms, r.event(t, component.Disconnected).RetryIn)
	r.clock.sleep(t, 100*ms)
	r.dialer.fail(t, component.ErrConflict)
	e := r.event(t, component.Disconnected)
	assert.ErrorIs(t, e.Err, component.ErrConflict)
	r.clock.sleep(t, 200*ms)

	// A stream: a request goes out on it, and is lost with it.
	p1 := r.dialer.accept(t)
	assert.NotNil(t, r.event(t, component.Connected).Conn)
	lost := r.get("lost")
	assert.Equal(t, "lost", p1.next(t).ID)
	_ = p1.conn.Close()
	err := recvErr(t, lost)
	assert.ErrorIs(t, err, iq.ErrConnectionLost)
	assert.ErrorIs(t, err, iq.ErrClosed)
	e = r.event(t, component.Disconnected)
	assert.Equal(t, 400*ms, e.RetryIn, "a short-lived stream counts as a failure")
	assert.Nil(t, r.sup.Conn())

	// A request made now waits for the next stream.
	waiting := r.get("waiting")
	r.clock.sleep(t, 400*ms)
	p2 := r.dialer.accept(t)
	r.event(t, component.Connected)
	assert.Equal(t, "waiting", p2.next(t).ID)
	p2.write(t, `<iq type="result" id="waiting" from="svc2.example"/>`)
	assert.NoError(t, recvErr(t, waiting))
	// The handlers registered once answer on the new stream.
	p2.write(t, `<iq type="get" id="in" from="a@example" to="svc.example"><echo xmlns="urn:t">hi</echo></iq>`)
	reply := p2.next(t)
	assert.Equal(t, iq.TypeResult, reply.Type)
	assert.Equal(t, "svc.example", reply.From)

	// A stream that lived long enough starts the waits over.
	r.clock.advance(10 * time.Second)
	p2.write(t, `</stream:stream>`)
	e = r.event(t, component.Disconnected)
	assert.Equal(t, 100*ms, e.RetryIn)
	assert.ErrorIs(t, e.Err, io.EOF)
	r.clock.sleep(t, 100*ms)

	// Not authorized stops it for good.
	r.dialer.fail(t, component.ErrNotAuthorized)
	e = r.event(t, component.Stopped)
	assert.ErrorIs(t, e.Err, component.ErrNotAuthorized)
	assert.ErrorIs(t, recvErr(t, r.runErr), component.ErrNotAuthorized)
	r.runErr <- nil // for the cleanup
	_, err = r.ep.Caller.Request(context.Background(), &iq.IQ{Type: iq.TypeGet, Payload: iq.NewElement("urn:t", "q")})
	assert.ErrorIs(t, err, iq.ErrClosed)
	assert.ErrorIs(t, r.sup.SendIQ(context.Background(), &iq.IQ{}), component.ErrStopped)
}

func TestSupervisorPermanentRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		stop bool
	}{
		{"not authorized", component.ErrNotAuthorized, true},
		{"host unknown", component.ErrHostUnknown, true},
		{"conflict", component.ErrConflict, false},
		{"other handshake failure", component.ErrHandshake, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			r := newRig(t)
			r.dialer.fail(t, tc.err)
			if !tc.stop {
				assert.ErrorIs(t, r.event(t, component.Disconnected).Err, tc.err)
				return
			}
			assert.ErrorIs(t, r.event(t, component.Stopped).Err, tc.err)
			err := recvErr(t, r.runErr)
			assert.ErrorIs(t, err, tc.err)
			r.runErr <- err
		})
	}
}

func TestSupervisorRequestsWithoutStream(t *testing.T) {
	t.Run("fail fast", func(t *testing.T) {
		leakCheck(t)
		r := newRig(t, component.WithFailFast())
		_, err := r.ep.Caller.Request(context.Background(), &iq.IQ{Type: iq.TypeGet, Payload: iq.NewElement("urn:t", "q")})
		assert.ErrorIs(t, err, component.ErrNotConnected)
	})
	t.Run("wait until the deadline", func(t *testing.T) {
		leakCheck(t)
		r := newRig(t)
		ctx, cancel := context.WithTimeout(context.Background(), 50*ms)
		defer cancel()
		_, err := r.ep.Caller.Request(ctx, &iq.IQ{Type: iq.TypeGet, Payload: iq.NewElement("urn:t", "q")})
		assert.ErrorIs(t, err, iq.ErrTimeout)
	})
}

// TestSupervisorShutdown: Shutdown lets the handler running finish and
// its reply go out, closes the stream with its closing tag, and makes Run
// return nil without dialing again.
func TestSupervisorShutdown(t *testing.T) {
	leakCheck(t)
	r := newRig(t)
	release := make(chan struct{})
	r.ep.Callee.Get("urn:t", "slow", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		<-release
		return nil, nil
	})
	p := r.dialer.accept(t)
	r.event(t, component.Connected)
	p.write(t, `<iq type="get" id="slow1" from="a@example" to="svc.example"><slow xmlns="urn:t"/></iq>`)
	for r.ep.Callee.InFlight() == 0 {
		time.Sleep(time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- r.sup.Shutdown(context.Background()) }()
	close(release)
	reply := p.next(t)
	assert.Equal(t, "slow1", reply.ID)
	assert.Equal(t, iq.TypeResult, reply.Type)
	assert.NoError(t, recvErr(t, done))
	assert.NoError(t, recvErr(t, r.runErr))
	r.runErr <- nil
	assert.Nil(t, r.event(t, component.Stopped).Err)
	select {
	case <-p.eof:
	case <-time.After(waitLong):
		t.Fatal("stream not closed")
	}
}

func TestSupervisorContextEnds(t *testing.T) {
	leakCheck(t)
	d := newFakeDialer()
	sup := component.NewSupervisor("tcp", "x:1", "svc.example", "s", component.WithDialer(d.dial))
	ep := iq.NewEndpoint(sup)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- sup.Run(ctx, ep, nil) }()
	p := d.accept(t)
	_ = p
	cancel()
	assert.ErrorIs(t, recvErr(t, errc), context.Canceled)
	assert.EqualError(t, sup.Run(context.Background(), ep, nil), "component: Supervisor.Run called twice")
}

// TestSupervisorShutdownWhileDown: Shutdown during a wait between dials,
// or before Run, stops Run at once with nil, and nothing more is dialed.
func TestSupervisorShutdownWhileDown(t *testing.T) {
	t.Run("during the wait", func(t *testing.T) {
		leakCheck(t)
		r := newRig(t)
		r.dialer.fail(t, errors.New("refused"))
		r.event(t, component.Disconnected)
		<-r.clock.sleeps // Run waits, and the test never ends the wait
		require.NoError(t, r.sup.Shutdown(context.Background()))
		assert.NoError(t, recvErr(t, r.runErr))
		r.runErr <- nil
		assert.Nil(t, r.event(t, component.Stopped).Err)
	})
	t.Run("before Run", func(t *testing.T) {
		leakCheck(t)
		d := newFakeDialer()
		sup := component.NewSupervisor("tcp", "x:1", "svc.example", "s", component.WithDialer(d.dial))
		require.NoError(t, sup.Shutdown(context.Background()))
		ep := iq.NewEndpoint(sup)
		assert.NoError(t, sup.Run(context.Background(), ep, nil))
		_, err := ep.Caller.Request(context.Background(), &iq.IQ{Type: iq.TypeGet, Payload: iq.NewElement("urn:t", "q")})
		assert.ErrorIs(t, err, iq.ErrClosed)
	})
}

// TestSupervisorConn: Conn is the stream up, and nil between streams.
func TestSupervisorConn(t *testing.T) {
	leakCheck(t)
	r := newRig(t)
	assert.Nil(t, r.sup.Conn())
	p := r.dialer.accept(t)
	e := r.event(t, component.Connected)
	assert.Same(t, e.Conn, r.sup.Conn())
	_ = p.conn.Close()
	r.event(t, component.Disconnected)
	assert.Nil(t, r.sup.Conn())
}
