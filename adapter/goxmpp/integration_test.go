package goxmppiq_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xmppo/go-xmpp"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	goxmppiq "github.com/xmpp-iq/iq/adapter/goxmpp"
	"github.com/xmpp-iq/iq/internal/servertest"
)

const (
	nsTest    = "urn:example:goxmppiq"
	nsTestErr = "urn:example:goxmppiq:errors"
	nsVersion = "jabber:iq:version"
	nsPing    = "urn:xmpp:ping"
	nsPeer    = "urn:example:peer" // what scripts/slixpeer.py answers
)

// noLeaks checks, after every other cleanup of t has run, that no goroutine
// is left behind.
func noLeaks(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, ignoreClose) })
}

// wireTee is go-xmpp's DebugWriter: each of its writes is one chunk, read
// ("RECV ") or written ("SEND ", one whole stanza); it keeps them apart.
type wireTee struct{ in, out *servertest.SyncBuffer }

func (w wireTee) Write(p []byte) (int, error) {
	switch {
	case bytes.HasPrefix(p, []byte("SEND ")):
		_, _ = w.out.Write(p[5:])
	case bytes.HasPrefix(p, []byte("RECV ")):
		_, _ = w.in.Write(p[5:])
	}
	return len(p), nil
}

// peer is a logged-in go-xmpp client with an Adapter.
type peer struct {
	t       *testing.T
	a       *goxmppiq.Adapter
	jid     string                 // full JID, as bound
	in, out *servertest.SyncBuffer // what the client read and wrote
	logs    servertest.LogCapture
	cancel  context.CancelFunc
	served  chan error
	stopped bool
}

func login(t *testing.T, user string, setup func(*iq.Callee), opts ...iq.Option) *peer {
	t.Helper()
	return loginAt(t, env.C2SAddr, env.Password(t, user), user, setup, opts...)
}

// loginAt logs user in on the server at addr, in plain text (the servers
// the scripts start offer no TLS), and makes an Adapter, with setup to
// register Callee handlers before anything is read.
func loginAt(t *testing.T, addr, password, user string, setup func(*iq.Callee), opts ...iq.Option) *peer {
	t.Helper()
	p := &peer{t: t, in: new(servertest.SyncBuffer), out: new(servertest.SyncBuffer), logs: servertest.NewLogCapture()}
	o := xmpp.Options{
		Host: addr, User: user + "@" + env.Domain, Password: password,
		NoTLS: true, InsecureAllowUnencryptedAuth: true, Mechanism: "PLAIN",
		Resource:    fmt.Sprintf("gx-%d", time.Now().UnixNano()),
		DialTimeout: 10 * time.Second,
		Debug:       true, DebugWriter: wireTee{p.in, p.out},
	}
	c, err := o.NewClient()
	require.NoError(t, err)
	p.jid = c.JID()
	require.Contains(t, p.jid, "/", "no resource bound")
	opts = append([]iq.Option{iq.WithLogger(slog.New(p.logs))}, opts...)
	p.a = goxmppiq.New(c, opts...)
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
	go func() { p.served <- p.a.Serve(ctx, nil) }()
	p.t.Cleanup(func() { p.stop() })
	return p
}

// stop cancels Serve and waits for it; it returns what Serve returned.
func (p *peer) stop() error {
	if p.stopped {
		return nil
	}
	p.stopped = true
	p.cancel()
	select {
	case err := <-p.served:
		return err
	case <-time.After(15 * time.Second):
		p.t.Error("Serve did not return within 15 s of its context's end")
		return nil
	}
}

// iqTags returns the start tags of the <iq> elements in wire whose id is id.
func iqTags(wire, id string) []string {
	var tags []string
	for rest := wire; ; {
		i := strings.Index(rest, "<iq")
		if i < 0 {
			return tags
		}
		rest = rest[i:]
		end := strings.IndexByte(rest, '>')
		if end < 0 {
			return tags
		}
		tag := rest[:end+1]
		if strings.Contains(tag, `id="`+id+`"`) || strings.Contains(tag, `id='`+id+`'`) {
			tags = append(tags, tag)
		}
		rest = rest[end+1:]
	}
}

// repliesTo counts the IQs this peer wrote with id, once the first has
// reached the tee and long enough after for a second.
func (p *peer) repliesTo(id string) int {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if len(iqTags(p.out.String(), id)) > 0 {
			break
		}
	}
	time.Sleep(300 * time.Millisecond)
	return len(iqTags(p.out.String(), id))
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

// Login, and a get to the server answered: its version, and a ping to the
// account's own server (the local JID is the bound one, so its answers
// from the domain are accepted).
func TestServerAnswers(t *testing.T) {
	needServer(t)
	noLeaks(t)
	alice := login(t, "alice", nil).serve()
	res, err := alice.a.Endpoint.Caller.Get(servertest.Ctx(t, 10*time.Second), env.Domain, iq.NewElement(nsVersion, "query"))
	require.NoError(t, err)
	require.NotNil(t, res)
	assert.Equal(t, nsVersion, res.Name.Space)
	assert.Contains(t, res.String(), per("Prosody", "ejabberd"))
	for _, to := range []string{"", strings.SplitN(alice.jid, "/", 2)[0], env.Domain} {
		_, err := alice.a.Endpoint.Caller.Get(servertest.Ctx(t, 10*time.Second), to, iq.NewElement(nsPing, "ping"))
		assert.NoError(t, err, "ping to %q", to)
	}
	assert.Empty(t, alice.logs.Matching("dropped"), "alice dropped responses")
}

// A slixmpp client's custom gets reach our Callee and each gets exactly one
// reply on the wire, ours.
func TestSlixmppCallsAdapter(t *testing.T) {
	needServer(t)
	noLeaks(t)
	bob := login(t, "bob", func(c *iq.Callee) {
		c.Get(nsTest, "echo", echoHandler)
		c.Get(nsTest, "fail", failHandler)
	}).serve()
	alice := servertest.StartPeer(t, env, "alice")

	cases := []struct {
		name    string
		payload string
		check   func(t *testing.T, r servertest.Line)
	}{
		{"custom get answered by our handler", `<echo xmlns='` + nsTest + `'>hi &amp; bye</echo>`, func(t *testing.T, r servertest.Line) {
			require.Equal(t, "result", r.Type, "%+v", r)
			assert.Contains(t, r.Payload, "hi &amp; bye")
			assert.Contains(t, r.Payload, nsTest)
		}},
		{"handler's stanza error intact", `<fail xmlns='` + nsTest + `'/>`, func(t *testing.T, r servertest.Line) {
			require.Equal(t, "error", r.Type, "%+v", r)
			assert.Equal(t, "modify", r.ErrorType)
			assert.Equal(t, "not-acceptable", r.Condition)
			assert.Equal(t, "not today", r.Text)
			assert.Equal(t, nsTestErr, r.AppNS)
		}},
		{"unknown namespace is our feature-not-implemented", `<query xmlns='urn:example:nobody-home'/>`, func(t *testing.T, r servertest.Line) {
			require.Equal(t, "error", r.Type, "%+v", r)
			assert.Equal(t, "feature-not-implemented", r.Condition)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := alice.Call("get", bob.jid, tc.payload, 10*time.Second)
			tc.check(t, r)
			assert.Equal(t, 1, bob.repliesTo(r.ID), "bob's IQs with id %s: %q", r.ID, iqTags(bob.out.String(), r.ID))
			assert.Len(t, iqTags(bob.in.String(), r.ID), 1, "bob read the request %s once", r.ID)
			assert.NotContains(t, iqTags(bob.out.String(), r.ID)[0], "from=")
		})
	}
}

// Our Caller's gets to a slixmpp client: a result, a stanza error as
// *iq.StanzaError, and a timeout as iq.ErrTimeout.
func TestAdapterCallsSlixmpp(t *testing.T) {
	needServer(t)
	noLeaks(t)
	alice := login(t, "alice", nil).serve()
	bob := servertest.StartPeer(t, env, "bob")
	caller := alice.a.Endpoint.Caller

	servertest.CallPeer(t, caller, bob.JID, nsPeer, nil)
	assert.Empty(t, alice.logs.Matching("dropped"), "alice dropped responses")
}

// What go-xmpp keeps for itself: a ping get to us is answered by go-xmpp,
// once, and never reaches our Callee (documented as out of reach).
func TestPingAnsweredByGoXMPPOnce(t *testing.T) {
	needServer(t)
	noLeaks(t)
	reached := make(chan struct{}, 1)
	bob := login(t, "bob", func(c *iq.Callee) {
		c.Get(nsPing, "ping", func(context.Context, *iq.IQ) (*iq.Element, error) {
			reached <- struct{}{}
			return nil, nil
		})
	}).serve()
	alice := servertest.StartPeer(t, env, "alice")
	r := alice.Call("get", bob.jid, `<ping xmlns='`+nsPing+`'/>`, 10*time.Second)
	require.Equal(t, "result", r.Type, "%+v", r)
	assert.Equal(t, 1, bob.repliesTo(r.ID))
	select {
	case <-reached:
		t.Error("the ping reached the Callee: go-xmpp no longer answers it, update the package documentation")
	default:
	}
}

// blocking registers a get handler for <hang/> that returns only at the end
// of the test or of its context.
func blocking(t *testing.T) func(*iq.Callee) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	return func(c *iq.Callee) {
		c.Get(nsTest, "hang", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, iq.NewError(iq.Cancel, iq.ServiceUnavailable, "gave up")
		})
	}
}

// ignoreClose: go-xmpp's Close leaves a goroutine that closes the
// connection ten seconds later, whatever happened meanwhile.
var ignoreClose = goleak.IgnoreTopFunction("github.com/xmppo/go-xmpp.(*Client).Close.func1")

// The end of Serve's context closes the Endpoint with its cause: a request
// pending then fails with iq.ErrClosed, and Serve returns promptly.
func TestServeContextEndClosesEndpoint(t *testing.T) {
	needServer(t)
	noLeaks(t)
	alice := login(t, "alice", nil).serve()
	bob := servertest.StartPeer(t, env, "bob")
	caller := alice.a.Endpoint.Caller
	done := make(chan *iq.Call, 1)
	caller.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, To: bob.JID,
		Payload: iq.NewElement("urn:example:silent", "hang")}, done)
	require.Eventually(t, func() bool { return caller.Pending() == 1 }, 5*time.Second, 10*time.Millisecond)

	start := time.Now()
	err := alice.stop()
	assert.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(start), 3*time.Second)
	select {
	case call := <-done:
		assert.ErrorIs(t, call.Err, iq.ErrClosed)
		assert.ErrorIs(t, call.Err, context.Canceled)
	case <-time.After(time.Second):
		t.Fatal("the pending request did not end")
	}
}
