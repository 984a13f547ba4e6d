package melliumiq_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/xmpp-iq/iq"
	melliumiq "github.com/xmpp-iq/iq/adapter/mellium"
	"github.com/xmpp-iq/iq/internal/servertest"
	"go.uber.org/goleak"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

const (
	nsTest    = "urn:example:melliumiq"
	nsTestErr = "urn:example:melliumiq:errors"
	nsVersion = "jabber:iq:version"
	nsPing    = "urn:xmpp:ping"
)

// noLeaks checks, after every other cleanup of t has run, that no goroutine
// is left behind. mellium leaves none once a session's Serve has returned
// and its connection is closed.
func noLeaks(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// peer is a logged-in account with an Adapter.
type peer struct {
	t       *testing.T
	a       *melliumiq.Adapter
	s       *xmpp.Session
	jid     string                 // full JID, as bound
	in, out *servertest.SyncBuffer // what the session read and wrote
	logs    servertest.LogCapture
	cancel  context.CancelFunc
	served  chan error
	stopped bool
}

// login logs user in and makes an Adapter, with setup to register Callee
// handlers before anything is read. The resource is the server's choice
// (see DialPlaintext), a fresh random one for every session; login returns
// once it is bound, so that the peer can be called at once.
func login(t *testing.T, user string, setup func(*iq.Callee), opts ...iq.Option) *peer {
	t.Helper()
	return loginAt(t, env.C2SAddr, env.Password(t, user), user, setup, opts...)
}

// loginAt is login on the server at addr, with the password given.
func loginAt(t *testing.T, addr, password, user string, setup func(*iq.Callee), opts ...iq.Option) *peer {
	t.Helper()
	p := &peer{t: t, in: new(servertest.SyncBuffer), out: new(servertest.SyncBuffer), logs: servertest.NewLogCapture()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := melliumiq.DialPlaintextTee(ctx, addr, jid.MustParse(user+"@"+env.Domain), password, p.in, p.out)
	if err != nil {
		t.Fatal(err)
	}
	p.s = s
	p.jid = s.LocalAddr().String()
	if s.LocalAddr().Resourcepart() == "" {
		t.Fatalf("%s: no resource bound", p.jid)
	}
	opts = append([]iq.Option{iq.WithLogger(slog.New(p.logs))}, opts...)
	p.a = melliumiq.New(s, opts...)
	if setup != nil {
		setup(p.a.Endpoint.Callee)
	}
	return p
}

// serve runs Adapter.Serve until stop or the end of the test.
func (p *peer) serve() *peer {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.served = make(chan error, 1)
	go func() { p.served <- p.a.Serve(ctx) }()
	p.t.Cleanup(func() { p.stop() })
	return p
}

// stop cancels Serve, waits for it and closes the connection; it returns
// what Serve returned.
func (p *peer) stop() error {
	if p.stopped {
		return nil
	}
	p.stopped = true
	p.cancel()
	var err error
	select {
	case err = <-p.served:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s: Serve did not return within 10 s of its context's end", p.jid)
	}
	p.s.Conn().Close()
	return err
}

// repliesTo counts the IQs this peer wrote with each of the given ids. It
// waits for the first of each to reach the tee (which a session writes
// after the connection, so the requester may have its reply first), then
// long enough for a second, were one written after it.
func (p *peer) repliesTo(ids ...string) []int {
	for _, id := range ids {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if len(iqTags(p.out.String(), id)) > 0 {
				break
			}
		}
	}
	settle()
	wire := p.out.String()
	n := make([]int, len(ids))
	for i, id := range ids {
		n[i] = len(iqTags(wire, id))
	}
	return n
}

func echoHandler(_ context.Context, req *iq.IQ) (*iq.Element, error) {
	return iq.NewElement(nsTest, "echo").AppendText(req.Payload.Text()), nil
}

func failHandler(context.Context, *iq.IQ) (*iq.Element, error) {
	return nil, &iq.StanzaError{
		Type: iq.Modify, Condition: iq.NotAcceptable, Text: "not today",
		App: iq.NewElement(nsTestErr, "too-late", "until", "tomorrow"),
	}
}

// (a) The server answers jabber:iq:version.
func TestServerVersion(t *testing.T) {
	needServer(t)
	domain := env.Domain
	noLeaks(t)
	alice := login(t, "alice", nil).serve()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := alice.a.Endpoint.Caller.Get(ctx, domain, iq.NewElement(nsVersion, "query"))
	if err != nil {
		t.Fatalf("version of %s: %v", domain, err)
	}
	name := res.Child(nsVersion, "name")
	if name == nil || name.Text() == "" {
		t.Fatalf("version of %s: no <name> in %v", domain, res)
	}
	if want := per("Prosody", "ejabberd"); name.Text() != want {
		t.Errorf("version of %s: name %q, want %q", domain, name.Text(), want)
	}
	t.Logf("%s runs %s %s", domain, name.Text(), res.Child(nsVersion, "version").Text())
	if got := alice.a.Endpoint.Caller.Pending(); got != 0 {
		t.Errorf("Pending() = %d after the response, want 0", got)
	}
}

// (b) Alice calls Bob's Callee.
func TestPeerCalls(t *testing.T) {
	needServer(t)
	noLeaks(t)
	bob := login(t, "bob", func(c *iq.Callee) {
		c.Get(nsTest, "echo", echoHandler)
		c.Set(nsTest, "fail", failHandler)
	}).serve()
	alice := login(t, "alice", nil).serve()
	if alice.jid == bob.jid {
		t.Fatalf("alice and bob both bound %s", alice.jid)
	}
	caller := alice.a.Endpoint.Caller
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var ids []string
	t.Run("result", func(t *testing.T) {
		id := iq.NewID()
		ids = append(ids, id)
		res, err := caller.Request(ctx, &iq.IQ{ID: id, Type: iq.TypeGet, To: bob.jid,
			Payload: iq.NewElement(nsTest, "echo").AppendText("hello <bob> & co")})
		if err != nil {
			t.Fatal(err)
		}
		if res.From != bob.jid || res.Payload == nil || res.Payload.Text() != "hello <bob> & co" {
			t.Fatalf("got %v", res)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		const n = 20
		done := make(chan *iq.Call, n)
		for i := range n {
			id := iq.NewID()
			ids = append(ids, id)
			caller.Go(ctx, &iq.IQ{ID: id, Type: iq.TypeGet, To: bob.jid,
				Payload: iq.NewElement(nsTest, "echo").AppendText(fmt.Sprint(i))}, done)
		}
		for range n {
			call := <-done
			if call.Err != nil {
				t.Fatal(call.Err)
			}
			if got, want := call.Response.Payload.Text(), call.Request.Payload.Text(); got != want {
				t.Errorf("request %s: echo %q, want %q", call.Request.ID, got, want)
			}
		}
	})
	t.Run("unknown namespace", func(t *testing.T) {
		id := iq.NewID()
		ids = append(ids, id)
		_, err := caller.Request(ctx, &iq.IQ{ID: id, Type: iq.TypeGet, To: bob.jid,
			Payload: iq.NewElement("urn:example:nobody-home", "query")})
		if !errors.Is(err, &iq.StanzaError{Type: iq.Cancel, Condition: iq.FeatureNotImplemented}) {
			t.Fatalf("got %v, want cancel/feature-not-implemented", err)
		}
	})
	t.Run("stanza error", func(t *testing.T) {
		id := iq.NewID()
		ids = append(ids, id)
		_, err := caller.Request(ctx, &iq.IQ{ID: id, Type: iq.TypeSet, To: bob.jid,
			Payload: iq.NewElement(nsTest, "fail")})
		var serr *iq.StanzaError
		if !errors.As(err, &serr) {
			t.Fatalf("got %v, want a *iq.StanzaError", err)
		}
		if serr.Type != iq.Modify || serr.Condition != iq.NotAcceptable || serr.Text != "not today" {
			t.Errorf("got %s/%s %q, want modify/not-acceptable \"not today\"", serr.Type, serr.Condition, serr.Text)
		}
		if serr.App == nil || serr.App.Name.Space != nsTestErr || serr.App.Name.Local != "too-late" ||
			serr.App.AttrValue("until") != "tomorrow" {
			t.Errorf("application-specific condition = %v, want <too-late xmlns=%q until=\"tomorrow\"/>", serr.App, nsTestErr)
		}
	})
	t.Run("one reply each", func(t *testing.T) {
		// mellium's Serve would have added a service-unavailable of its own
		// to every request; Adapter.Serve must not.
		for i, n := range bob.repliesTo(ids...) {
			if n != 1 {
				t.Errorf("bob wrote %d IQs with id %s, want exactly 1", n, ids[i])
			}
		}
		if d := alice.logs.Matching("dropped"); len(d) > 0 {
			t.Errorf("alice dropped responses: %q", d)
		}
	})
	if got := caller.Pending(); got != 0 {
		t.Errorf("Pending() = %d, want 0", got)
	}
}

// (c) The server answers for a full JID that is not online.
func TestOfflineFullJID(t *testing.T) {
	needServer(t)
	domain := env.Domain
	noLeaks(t)
	alice := login(t, "alice", nil).serve()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	to := "bob@" + domain + "/offline-" + iq.NewID()
	_, err := alice.a.Endpoint.Caller.Get(ctx, to, iq.NewElement(nsPing, "ping"))
	var serr *iq.StanzaError
	if !errors.As(err, &serr) || serr.Condition != iq.ServiceUnavailable {
		t.Fatalf("ping %s: got %v, want a service-unavailable *iq.StanzaError", to, err)
	}
	t.Logf("ping %s: %s/%s", to, serr.Type, serr.Condition)
}

// blocking registers a handler that waits until the test ends (or its
// context is cancelled) and reports on started each time it is entered.
func blocking(t *testing.T, started chan<- string) func(*iq.Callee) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // runs before the peers stop
	return func(c *iq.Callee) {
		c.Get(nsTest, "hang", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
			if started != nil {
				started <- req.ID
			}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, iq.NewError(iq.Cancel, iq.ServiceUnavailable, "gave up")
		})
	}
}

// (d) A request Bob never answers times out.
func TestTimeout(t *testing.T) {
	needServer(t)
	noLeaks(t)
	started := make(chan string, 1)
	bob := login(t, "bob", nil)
	blocking(t, started)(bob.a.Endpoint.Callee)
	bob.serve()
	alice := login(t, "alice", nil).serve()

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := alice.a.Endpoint.Caller.Get(ctx, bob.jid, iq.NewElement(nsTest, "hang"))
	if !errors.Is(err, iq.ErrTimeout) {
		t.Fatalf("got %v, want iq.ErrTimeout", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v does not match context.DeadlineExceeded", err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("timed out after %v, want about 500ms", d)
	}
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Error("bob's handler never ran")
	}
	if got := alice.a.Endpoint.Caller.Pending(); got != 0 {
		t.Errorf("Pending() = %d after the timeout, want 0", got)
	}
}

// (e) When the session ends, pending and later requests fail with ErrClosed.
func TestClose(t *testing.T) {
	needServer(t)
	t.Run("context cancelled", func(t *testing.T) {
		noLeaks(t)
		started := make(chan string, 1)
		bob := login(t, "bob", nil)
		blocking(t, started)(bob.a.Endpoint.Callee)
		bob.serve()
		alice := login(t, "alice", nil).serve()
		caller := alice.a.Endpoint.Caller

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		call := caller.Go(ctx, &iq.IQ{Type: iq.TypeGet, To: bob.jid, Payload: iq.NewElement(nsTest, "hang")}, nil)
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("bob's handler never ran")
		}
		if got := caller.Pending(); got != 1 {
			t.Errorf("Pending() = %d while bob's handler runs, want 1", got)
		}
		if err := alice.stop(); !errors.Is(err, context.Canceled) {
			t.Errorf("Serve returned %v, want context.Canceled", err)
		}
		select {
		case <-call.Done:
		case <-time.After(5 * time.Second):
			t.Fatal("the pending request did not end when the session closed")
		}
		if !errors.Is(call.Err, iq.ErrClosed) {
			t.Errorf("pending request: got %v, want iq.ErrClosed", call.Err)
		}
		if got := caller.Pending(); got != 0 {
			t.Errorf("Pending() = %d after close, want 0", got)
		}
		_, err := caller.Get(ctx, bob.jid, iq.NewElement(nsTest, "echo"))
		if !errors.Is(err, iq.ErrClosed) {
			t.Errorf("request after close: got %v, want iq.ErrClosed", err)
		}
	})
	t.Run("stream closed", func(t *testing.T) {
		noLeaks(t)
		alice := login(t, "alice", nil).serve()
		// Close the output stream from outside Serve: the server answers
		// with its own </stream:stream>, and Serve ends cleanly.
		if err := alice.s.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-alice.served:
			alice.served <- err // for stop
			if err != nil {
				t.Errorf("Serve returned %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return after the stream closed")
		}
		caller := alice.a.Endpoint.Caller
		if got := caller.Pending(); got != 0 {
			t.Errorf("Pending() = %d, want 0", got)
		}
		_, err := caller.Get(context.Background(), env.Domain, iq.NewElement(nsPing, "ping"))
		if !errors.Is(err, iq.ErrClosed) || !errors.Is(err, melliumiq.ErrStreamEnded) {
			t.Errorf("request after the stream ended: got %v, want iq.ErrClosed and ErrStreamEnded", err)
		}
	})
}

// Handler under mellium's own Serve: requests are answered once, and the
// Caller still gets the responses to its requests.
func TestHandlerUnderMelliumServe(t *testing.T) {
	needServer(t)
	domain := env.Domain
	noLeaks(t)
	bob := login(t, "bob", func(c *iq.Callee) { c.Get(nsTest, "echo", echoHandler) })
	served := make(chan error, 1)
	go func() { served <- bob.s.Serve(bob.a.Handler(nil)) }()
	t.Cleanup(func() {
		bob.s.Close()
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Error("mellium's Serve did not return")
		}
		bob.a.Endpoint.Close()
		bob.s.Conn().Close()
	})
	alice := login(t, "alice", nil).serve()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	id := iq.NewID()
	res, err := alice.a.Endpoint.Caller.Request(ctx, &iq.IQ{ID: id, Type: iq.TypeGet, To: bob.jid,
		Payload: iq.NewElement(nsTest, "echo").AppendText("sync")})
	if err != nil || res.Payload.Text() != "sync" {
		t.Fatalf("echo: got %v, %v", res, err)
	}
	id2 := iq.NewID()
	_, err = alice.a.Endpoint.Caller.Request(ctx, &iq.IQ{ID: id2, Type: iq.TypeGet, To: bob.jid,
		Payload: iq.NewElement("urn:example:nobody-home", "query")})
	if !errors.Is(err, &iq.StanzaError{Condition: iq.FeatureNotImplemented}) {
		t.Fatalf("unknown namespace: got %v, want feature-not-implemented (not mellium's service-unavailable)", err)
	}
	for i, n := range bob.repliesTo(id, id2) {
		if n != 1 {
			t.Errorf("bob wrote %d IQs with id %s, want exactly 1", n, []string{id, id2}[i])
		}
	}
	// Bob's own request: mellium must hand the response to the handler.
	res2, err := bob.a.Endpoint.Caller.Get(ctx, domain, iq.NewElement(nsVersion, "query"))
	if err != nil || res2.Child(nsVersion, "name") == nil {
		t.Fatalf("bob's version request under mellium's Serve: got %v, %v", res2, err)
	}
}

// The Sender gives up on a done context without writing anything.
func TestSenderContext(t *testing.T) {
	needServer(t)
	noLeaks(t)
	alice := login(t, "alice", nil).serve()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := alice.out.String()
	err := alice.a.Sender.SendIQ(ctx, &iq.IQ{ID: "x", Type: iq.TypeGet, To: env.Domain,
		Payload: iq.NewElement(nsPing, "ping")})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("SendIQ with a cancelled context: got %v, want context.Canceled", err)
	}
	if after := alice.out.String(); after != before {
		t.Errorf("SendIQ with a cancelled context wrote %q", after[len(before):])
	}
}
