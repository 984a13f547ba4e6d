// Package integration_test runs the library against a real XMPP server,
// Prosody or ejabberd, and a third-party client (slixmpp). Start a server
// with scripts/prosody.sh start or scripts/ejabberd.sh start and load its
// env file first; without it the tests are skipped, saying so, unless
// IQ_REQUIRE_INTEGRATION=1, which makes that a failure (as in CI).
//
// Where the two servers differ (see scripts/README-integration.md), a test
// asserts each server's own behaviour; it never skips one.
//
// These tests talk to a server whose state go test cannot see, so their
// results are never cached, whatever the flags (see noCache).
package integration_test

import (
	"context"
	"errors"
	"fmt"
	"os"
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

// The servers the scripts start, as IQ_XMPP_SERVER names them.
const (
	prosody  = "prosody"
	ejabberd = "ejabberd"
)

type serverEnv struct {
	server                    string // prosody or ejabberd
	c2sAddr, compAddr, domain string
	comp, compSecret          string
	comp2, comp2Secret        string
	spare, spareSecret        string
	nodes                     []nodeComponent // per-process domains, see scaleout_test.go
	users                     map[string]string
}

var (
	env        serverEnv
	skipReason string // why there is no server; "" when there is one
	envOnce    sync.Once
)

// loadEnv reads the server's environment. It runs inside the first test
// that needs a server, never in TestMain: go test keys its cache only on
// the variables a test reads while tests run (-test.testlogfile), so a
// result read from TestMain's environment would be replayed from the cache
// after the environment changed.
func loadEnv() {
	env = serverEnv{
		server:  os.Getenv("IQ_XMPP_SERVER"),
		c2sAddr: os.Getenv("IQ_XMPP_C2S_ADDR"), compAddr: os.Getenv("IQ_XMPP_COMPONENT_ADDR"),
		domain: os.Getenv("IQ_XMPP_DOMAIN"),
		comp:   os.Getenv("IQ_XMPP_COMPONENT"), compSecret: os.Getenv("IQ_XMPP_COMPONENT_SECRET"),
		comp2: os.Getenv("IQ_XMPP_COMPONENT2"), comp2Secret: os.Getenv("IQ_XMPP_COMPONENT2_SECRET"),
		spare: os.Getenv("IQ_XMPP_SPARE_COMPONENT"), spareSecret: os.Getenv("IQ_XMPP_SPARE_SECRET"),
		users: map[string]string{},
	}
	for _, u := range strings.Fields(os.Getenv("IQ_XMPP_USERS")) {
		name, pass, _ := strings.Cut(u, ":")
		env.users[name] = pass
	}
	for _, n := range strings.Fields(os.Getenv("IQ_XMPP_NODE_COMPONENTS")) {
		domain, secret, _ := strings.Cut(n, ":")
		env.nodes = append(env.nodes, nodeComponent{domain, secret})
	}
	if env.c2sAddr == "" || env.compAddr == "" {
		skipReason = "no XMPP server configured (IQ_XMPP_C2S_ADDR and IQ_XMPP_COMPONENT_ADDR unset): " +
			"run scripts/prosody.sh start or scripts/ejabberd.sh start and load its env file"
	}
}

// noCachePath is a file every run opens and TestMain touches as the
// process ends. go test refuses to cache a result when a file inside the
// module that the test opened changed less than two seconds before it
// hashes the test's inputs, so no run of this package is ever replayed as
// "ok (cached)", even without -count=1. (Files outside the module are not
// looked at; the file is git-ignored.)
const noCachePath = ".nocache"

var noCacheOnce sync.Once

// noCache records noCachePath as an input of this run. It fails the test
// when the file cannot be written and a server is configured or required:
// a cached result would then be possible.
func noCache(t *testing.T) {
	t.Helper()
	var err error
	noCacheOnce.Do(func() {
		err = os.WriteFile(noCachePath, []byte("touched by every integration test run so that go test never caches it\n"), 0o644)
		if err == nil {
			var f *os.File
			if f, err = os.Open(noCachePath); err == nil {
				err = f.Close()
			}
		}
	})
	if err != nil && (skipReason == "" || os.Getenv("IQ_REQUIRE_INTEGRATION") == "1") {
		t.Fatalf("integration: cannot make this run uncacheable: %v", err)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	// After the tests, so the file is newer than the cache's cutoff when
	// go test looks at it. (Skipped runs are made uncacheable too: a
	// skip must not be replayed once a server is configured.)
	now := time.Now()
	_ = os.Chtimes(noCachePath, now, now)
	if skipReason != "" {
		fmt.Fprintln(os.Stderr, "integration: SKIPPED:", skipReason)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "integration: goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// needServer loads the environment and skips the test when no server is
// configured, or fails it when IQ_REQUIRE_INTEGRATION=1 (read here, inside
// the test, for the same reason as loadEnv).
func needServer(t *testing.T) {
	t.Helper()
	envOnce.Do(loadEnv)
	noCache(t)
	if skipReason != "" {
		if os.Getenv("IQ_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("IQ_REQUIRE_INTEGRATION=1:", skipReason)
		}
		t.Skip(skipReason)
	}
	switch env.server {
	case prosody, ejabberd:
	default:
		t.Fatalf("IQ_XMPP_SERVER is %q, want %q or %q (the scripts' env files set it)", env.server, prosody, ejabberd)
	}
}

// per returns the value for the server the tests run against.
func per[T any](onProsody, onEjabberd T) T {
	if env.server == ejabberd {
		return onEjabberd
	}
	return onProsody
}

func (e serverEnv) password(t *testing.T, user string) string {
	p, ok := e.users[user]
	require.True(t, ok, "no account %q in IQ_XMPP_USERS", user)
	return p
}

// dialComponent connects a component and serves it with ep's handlers.
// Prosody may still be tearing down a previous test's connection for the
// same domain, so a conflict is retried for a few seconds.
func dialComponent(t *testing.T, domain, secret string, setup func(*iq.Endpoint)) (*iq.Endpoint, *stream.Conn, <-chan struct{}) {
	t.Helper()
	var conn *stream.Conn
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		conn, err = component.Dial(waitCtx(t, 10*time.Second), "tcp", env.compAddr, domain, secret)
		if !errors.Is(err, component.ErrConflict) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, err)
	ep := iq.NewEndpoint(conn, iq.WithLocalJID(domain))
	if setup != nil {
		setup(ep)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := conn.Serve(context.Background(), ep, nil); err != nil {
			t.Logf("component %s: Serve: %v", domain, err)
		}
	}()
	t.Cleanup(func() {
		_ = conn.Close()
		<-done
	})
	return ep, conn, done
}

const (
	nsEcho   = "urn:example:echo"
	nsPeer   = "urn:example:peer"
	nsSilent = "urn:example:silent"
	nsAppErr = "urn:example:errors"
)

func echoHandlers(ep *iq.Endpoint) {
	ep.Callee.Get(nsEcho, "echo", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		return iq.NewElement(nsEcho, "echo").AppendText(req.Payload.Text()), nil
	})
	ep.Callee.Get(nsEcho, "fail", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		e := iq.NewError(iq.Modify, iq.NotAcceptable, "the echo refuses this")
		e.App = iq.NewElement(nsAppErr, "too-loud")
		return nil, e
	})
}

func TestComponent_Handshake(t *testing.T) {
	needServer(t)
	ep, conn, _ := dialComponent(t, env.comp, env.compSecret, echoHandlers)
	assert.NotEmpty(t, conn.PeerHeader().ID)
	// The server answers a ping from the component.
	res, err := ep.Caller.Get(waitCtx(t, 5*time.Second), env.domain, iq.NewElement("urn:xmpp:ping", "ping"))
	require.NoError(t, err)
	assert.Nil(t, res)
}

func TestComponent_HandshakeFailures(t *testing.T) {
	needServer(t)
	t.Run("wrong secret is not-authorized", func(t *testing.T) {
		_, err := component.Dial(waitCtx(t, 10*time.Second), "tcp", env.compAddr, env.comp2, "not the secret")
		require.Error(t, err)
		assert.ErrorIs(t, err, component.ErrNotAuthorized)
		assert.ErrorIs(t, err, &stream.StreamError{Condition: stream.NotAuthorized})
	})
	t.Run("unknown domain is refused", func(t *testing.T) {
		// Prosody answers the header with host-unknown; ejabberd lets the
		// handshake through and then refuses it as not-authorized.
		_, err := component.Dial(waitCtx(t, 10*time.Second), "tcp", env.compAddr, "nowhere."+env.domain, "x")
		require.Error(t, err)
		assert.ErrorIs(t, err, per(component.ErrHostUnknown, component.ErrNotAuthorized))
	})
	t.Run("second connection", func(t *testing.T) {
		// Prosody refuses it with conflict; ejabberd accepts any number of
		// connections for one name (and spreads stanzas over them).
		dialComponent(t, env.spare, env.spareSecret, nil)
		conn, err := component.Dial(waitCtx(t, 10*time.Second), "tcp", env.compAddr, env.spare, env.spareSecret)
		if env.server == ejabberd {
			require.NoError(t, err)
			assert.NoError(t, conn.Close())
			return
		}
		require.Error(t, err)
		assert.ErrorIs(t, err, component.ErrConflict)
	})
	t.Run("timeout", func(t *testing.T) {
		// A listener that accepts and never speaks: the handshake must
		// give up at the context's deadline.
		ln := silentListener(t)
		start := time.Now()
		_, err := component.Dial(waitCtx(t, 300*time.Millisecond), "tcp", ln, env.comp, env.compSecret)
		require.Error(t, err)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, time.Since(start), 3*time.Second)
	})
}

func TestSlixmppClientCallsComponent(t *testing.T) {
	needServer(t)
	dialComponent(t, env.comp, env.compSecret, echoHandlers)
	alice := startPeer(t, "alice")

	t.Run("result", func(t *testing.T) {
		r := alice.call("get", env.comp, `<echo xmlns='urn:example:echo'>hello &amp; bye</echo>`, 10*time.Second)
		require.Equal(t, "result", r.Type, "%+v", r)
		assert.Contains(t, r.Payload, "hello &amp; bye")
		assert.Contains(t, r.Payload, nsEcho)
	})
	t.Run("unknown namespace is feature-not-implemented", func(t *testing.T) {
		r := alice.call("get", env.comp, `<query xmlns='urn:example:unknown'/>`, 10*time.Second)
		require.Equal(t, "error", r.Type, "%+v", r)
		assert.Equal(t, "cancel", r.ErrorType)
		assert.Equal(t, "feature-not-implemented", r.Condition)
	})
	t.Run("handler stanza error arrives intact", func(t *testing.T) {
		r := alice.call("get", env.comp, `<fail xmlns='urn:example:echo'/>`, 10*time.Second)
		require.Equal(t, "error", r.Type, "%+v", r)
		assert.Equal(t, "modify", r.ErrorType)
		assert.Equal(t, "not-acceptable", r.Condition)
		assert.Equal(t, "the echo refuses this", r.Text)
		assert.Equal(t, nsAppErr, r.AppNS)
		assert.Equal(t, "too-loud", r.AppName)
	})
	t.Run("two children is bad-request", func(t *testing.T) {
		// slixmpp sends one child; a get with none reaches us as zero children.
		r := alice.call("get", env.comp, "", 10*time.Second)
		require.Equal(t, "error", r.Type, "%+v", r)
		assert.Equal(t, "bad-request", r.Condition)
	})
}

func TestComponentCallsSlixmppClient(t *testing.T) {
	needServer(t)
	ep, _, _ := dialComponent(t, env.comp, env.compSecret, echoHandlers)
	bob := startPeer(t, "bob")

	t.Run("result", func(t *testing.T) {
		res, err := ep.Caller.Get(waitCtx(t, 10*time.Second), bob.jid, iq.NewElement(nsPeer, "echo").AppendText("ping <3"))
		require.NoError(t, err)
		require.NotNil(t, res)
		assert.Equal(t, nsPeer, res.Name.Space)
		assert.Equal(t, "ping <3", res.Text())
	})
	t.Run("offline JID is service-unavailable", func(t *testing.T) {
		_, err := ep.Caller.Get(waitCtx(t, 10*time.Second), "carol@"+env.domain+"/offline", iq.NewElement(nsPeer, "echo"))
		var se *iq.StanzaError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, iq.ServiceUnavailable, se.Condition)
		assert.Equal(t, iq.Cancel, se.Type)
	})
	t.Run("unanswered call times out", func(t *testing.T) {
		start := time.Now()
		_, err := ep.Caller.Get(waitCtx(t, 700*time.Millisecond), bob.jid, iq.NewElement(nsSilent, "hang"))
		assert.ErrorIs(t, err, iq.ErrTimeout)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, time.Since(start), 3*time.Second)
		assert.Equal(t, 0, ep.Caller.Pending())
	})
	t.Run("unknown namespace at the client is feature-not-implemented", func(t *testing.T) {
		_, err := ep.Caller.Get(waitCtx(t, 10*time.Second), bob.jid, iq.NewElement("urn:example:unknown", "q"))
		var se *iq.StanzaError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, iq.FeatureNotImplemented, se.Condition)
	})
}

func TestComponentToComponentThroughServer(t *testing.T) {
	needServer(t)
	dialComponent(t, env.comp, env.compSecret, echoHandlers)
	caller, _, _ := dialComponent(t, env.comp2, env.comp2Secret, nil)
	const n = 200
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			want := fmt.Sprintf("msg %d", i)
			res, err := caller.Caller.Get(waitCtx(t, 10*time.Second), env.comp, iq.NewElement(nsEcho, "echo").AppendText(want))
			if err == nil && res.Text() != want {
				err = fmt.Errorf("got %q, want %q", res.Text(), want)
			}
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		assert.NoError(t, <-errs)
	}
	assert.Equal(t, 0, caller.Caller.Pending())
}

// TestBugComponentRequestsCarryNoFrom: a component's own requests, to the
// server and to a client, are answered and leave the stream up. ejabberd
// kills a component stream for a stanza without from (improper-addressing,
// "Missing 'from' attribute"), which failed everything pending; Prosody
// stamps the component's address itself.
func TestBugComponentRequestsCarryNoFrom(t *testing.T) {
	needServer(t)
	ep, conn, served := dialComponent(t, env.comp, env.compSecret, echoHandlers)
	bob := startPeer(t, "bob")

	cases := []struct {
		name string
		to   string
		el   *iq.Element
		want func(t *testing.T, res *iq.Element)
	}{
		{"ping to the server", env.domain, iq.NewElement("urn:xmpp:ping", "ping"), func(t *testing.T, res *iq.Element) {
			assert.Nil(t, res)
		}},
		{"version of the server", env.domain, iq.NewElement("jabber:iq:version", "query"), func(t *testing.T, res *iq.Element) {
			require.NotNil(t, res)
			assert.Equal(t, "jabber:iq:version", res.Name.Space)
		}},
		{"echo from a client", bob.jid, iq.NewElement(nsPeer, "echo").AppendText("from the component"), func(t *testing.T, res *iq.Element) {
			require.NotNil(t, res)
			assert.Equal(t, "from the component", res.Text())
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := ep.Caller.Get(waitCtx(t, 10*time.Second), tc.to, tc.el)
			require.NoError(t, err)
			tc.want(t, res)
			// The stream is still up: nothing ended it after the reply.
			select {
			case <-served:
				t.Fatalf("the stream ended: %v", conn.Err())
			case <-time.After(200 * time.Millisecond):
			}
			assert.NoError(t, conn.Err())
		})
	}
}

// TestComponentCallsUnconnectedComponent: a request to a configured
// component that is not connected gets the server's own error, which
// differs: Prosody says wait/remote-server-timeout, ejabberd (no route, so
// a remote domain, and s2s is off) auth/forbidden.
func TestComponentCallsUnconnectedComponent(t *testing.T) {
	needServer(t)
	caller, _, _ := dialComponent(t, env.comp2, env.comp2Secret, nil)
	_, err := caller.Caller.Get(waitCtx(t, 10*time.Second), env.spare, iq.NewElement(nsEcho, "echo"))
	var se *iq.StanzaError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, per(iq.Wait, iq.Auth), se.Type)
	assert.Equal(t, per(iq.RemoteServerTimeout, iq.Forbidden), se.Condition)
}
