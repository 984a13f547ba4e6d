package gosrciq_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"gosrc.io/xmpp"
	"gosrc.io/xmpp/stanza"

	"github.com/xmpp-iq/iq"
	gosrciq "github.com/xmpp-iq/iq/adapter/gosrc"
	"github.com/xmpp-iq/iq/internal/servertest"
)

const (
	nsTest    = "urn:example:gosrciq"
	nsTestErr = "urn:example:gosrciq:errors"
	nsVersion = "jabber:iq:version"
	nsPing    = "urn:xmpp:ping"
	nsPeer    = "urn:example:peer" // what scripts/slixpeer.py answers
)

// noLeaks checks, after every other cleanup of t has run, that no goroutine
// is left behind.
func noLeaks(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// peer is a connected gosrc.io/xmpp client with an Adapter.
type peer struct {
	t      *testing.T
	a      *gosrciq.Adapter
	jid    string // full JID, as bound
	wire   string // the file gosrc logs the stream to
	logs   servertest.LogCapture
	errs   chan error // what the client reported
	closed bool
}

func login(t *testing.T, user string, setup func(*iq.Endpoint), opts ...iq.Option) *peer {
	t.Helper()
	return loginAt(t, env.C2SAddr, env.Password(t, user), user, setup, opts...)
}

// loginAt logs user in on the server at addr, in plain text (the servers
// the scripts start offer no TLS), with setup run on the Endpoint before
// anything reaches it; the client is closed when the test ends.
func loginAt(t *testing.T, addr, password, user string, setup func(*iq.Endpoint), opts ...iq.Option) *peer {
	t.Helper()
	p := &peer{t: t, logs: servertest.NewLogCapture(), errs: make(chan error, 16)}
	p.wire = filepath.Join(t.TempDir(), "wire.log")
	f, err := os.Create(p.wire)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	cfg := &xmpp.Config{
		TransportConfiguration: xmpp.TransportConfiguration{Address: addr, Domain: env.Domain},
		Jid:                    fmt.Sprintf("%s@%s/gs-%d", user, env.Domain, time.Now().UnixNano()),
		Credential:             xmpp.Password(password),
		Insecure:               true,
		ConnectTimeout:         2,
		StreamLogger:           f,
	}
	opts = append([]iq.Option{iq.WithLogger(slog.New(p.logs))}, opts...)
	p.a, err = gosrciq.Connect(cfg, nil, func(err error) {
		select {
		case p.errs <- err:
		default:
		}
	}, setup, opts...)
	require.NoError(t, err)
	p.jid = p.a.LocalJID()
	require.Contains(t, p.jid, "/", "no resource bound")
	t.Cleanup(p.close)
	return p
}

func (p *peer) close() {
	if p.closed {
		return
	}
	p.closed = true
	_ = p.a.Close()
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

// onWire counts the <iq>s with id the client read or wrote, once two have
// been logged and long enough after for a third.
func (p *peer) onWire(id string) int {
	read := func() string { b, _ := os.ReadFile(p.wire); return string(b) }
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if len(iqTags(read(), id)) >= 2 {
			break
		}
	}
	time.Sleep(300 * time.Millisecond)
	return len(iqTags(read(), id))
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

// Login, and a get to the server answered: its version, and pings to the
// account's own server (the local JID is the bound one, so its answers
// from the domain are accepted).
func TestServerAnswers(t *testing.T) {
	needServer(t)
	noLeaks(t)
	alice := login(t, "alice", nil)
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

// A slixmpp client's gets reach our Callee and each gets exactly one reply
// on the wire, ours (gosrc's router answers none of them itself).
func TestSlixmppCallsAdapter(t *testing.T) {
	needServer(t)
	noLeaks(t)
	bob := login(t, "bob", func(e *iq.Endpoint) {
		e.Callee.Get(nsTest, "echo", echoHandler)
		e.Callee.Get(nsTest, "fail", failHandler)
		e.Callee.Get(nsVersion, "query", func(context.Context, *iq.IQ) (*iq.Element, error) {
			return iq.NewElement(nsVersion, "query").Append(iq.NewElement(nsVersion, "name").AppendText("gosrciq-test")), nil
		})
	})
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
		{"a payload gosrc decodes into its own type (version) reaches our handler", `<query xmlns='` + nsVersion + `'/>`, func(t *testing.T, r servertest.Line) {
			require.Equal(t, "result", r.Type, "%+v", r)
			assert.Contains(t, r.Payload, "gosrciq-test")
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
			// The request read once and one reply written: two <iq>s
			// with its id on bob's wire.
			assert.Equal(t, 2, bob.onWire(r.ID), "bob's IQs with id %s", r.ID)
		})
	}
}

// Our Caller's gets to a slixmpp client: a result, a stanza error as
// *iq.StanzaError, and a timeout as iq.ErrTimeout.
func TestAdapterCallsSlixmpp(t *testing.T) {
	needServer(t)
	noLeaks(t)
	alice := login(t, "alice", nil)
	bob := servertest.StartPeer(t, env, "bob")
	caller := alice.a.Endpoint.Caller

	servertest.CallPeer(t, caller, bob.JID, nsPeer, nil)
	assert.Empty(t, alice.logs.Matching("dropped"), "alice dropped responses")
}

// The lost-reply race of gosrc's own SendIQ (it writes the request before
// it registers the route its reply is matched on) does not happen through
// the adapter: the same workload, 500 concurrent gets to the server, loses
// no reply. gosrc's SendIQ is run on the same workload for comparison, and
// its losses are logged, not asserted.
func TestBugGosrcSendIQLosesRepliesNotThroughAdapter(t *testing.T) {
	needServer(t)
	noLeaks(t)
	const n = 500
	alice := login(t, "alice", nil)
	caller := alice.a.Endpoint.Caller

	var lost atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := caller.Get(servertest.Ctx(t, 20*time.Second), env.Domain, iq.NewElement(nsPing, "ping")); err != nil {
				lost.Add(1)
				t.Errorf("through the adapter: %v", err)
			}
		})
	}
	wg.Wait()
	assert.Zero(t, lost.Load(), "replies lost through the adapter")
	assert.Empty(t, alice.logs.Matching("dropped"), "alice dropped responses")

	// gosrc's own SendIQ, same workload; a reply it loses reaches the
	// adapter's route instead, and the Caller drops it (it sent nothing
	// with that id).
	var gosrcLost atomic.Int32
	for range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req, err := stanza.NewIQ(stanza.Attrs{Type: stanza.IQTypeGet, To: env.Domain})
			if !assert.NoError(t, err) {
				return
			}
			req.Any = &stanza.Node{XMLName: xml.Name{Space: nsPing, Local: "ping"}}
			ch, err := alice.a.Client.SendIQ(ctx, req)
			if !assert.NoError(t, err) {
				return
			}
			select {
			case <-ch:
			case <-ctx.Done():
				gosrcLost.Add(1)
			}
		})
	}
	wg.Wait()
	t.Logf("gosrc's own SendIQ lost %d of %d replies (through the adapter: %d)", gosrcLost.Load(), n, lost.Load())
}

// Close closes the Endpoint: a request pending then fails with
// iq.ErrClosed.
func TestCloseClosesEndpoint(t *testing.T) {
	needServer(t)
	noLeaks(t)
	alice := login(t, "alice", nil)
	bob := servertest.StartPeer(t, env, "bob")
	caller := alice.a.Endpoint.Caller
	done := make(chan *iq.Call, 1)
	caller.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, To: bob.JID,
		Payload: iq.NewElement("urn:example:silent", "hang")}, done)
	require.Eventually(t, func() bool { return caller.Pending() == 1 }, 5*time.Second, 10*time.Millisecond)
	alice.close()
	select {
	case call := <-done:
		assert.ErrorIs(t, call.Err, iq.ErrClosed)
		assert.ErrorIs(t, call.Err, gosrciq.ErrDisconnected)
	case <-time.After(time.Second):
		t.Fatal("the pending request did not end")
	}
}
