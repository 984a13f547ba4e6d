// Package integration_test runs the library against a real Prosody server
// and a third-party client (slixmpp). Start the server with
// scripts/prosody.sh start and load its environment first; without it the
// tests are skipped, saying so, unless IQ_REQUIRE_INTEGRATION=1, which
// makes that a failure (as in CI).
package integration_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/component"
	"github.com/xmpp-iq/iq/stream"
)

type serverEnv struct {
	c2sAddr, compAddr, domain string
	comp, compSecret          string
	comp2, comp2Secret        string
	spare, spareSecret        string
	users                     map[string]string
}

var (
	env        serverEnv
	skipReason string
)

func TestMain(m *testing.M) {
	env = serverEnv{
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
	if env.c2sAddr == "" || env.compAddr == "" {
		skipReason = "no XMPP server configured (IQ_XMPP_C2S_ADDR and IQ_XMPP_COMPONENT_ADDR unset): " +
			"run scripts/prosody.sh start and load its env file"
		if os.Getenv("IQ_REQUIRE_INTEGRATION") == "1" {
			fmt.Fprintln(os.Stderr, "integration: FAIL:", skipReason)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "integration: SKIPPING all tests:", skipReason)
	}
	goleak.VerifyTestMain(m)
}

func needServer(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
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
	t.Run("unknown domain is host-unknown", func(t *testing.T) {
		_, err := component.Dial(waitCtx(t, 10*time.Second), "tcp", env.compAddr, "nowhere."+env.domain, "x")
		require.Error(t, err)
		assert.ErrorIs(t, err, component.ErrHostUnknown)
	})
	t.Run("second connection is conflict", func(t *testing.T) {
		dialComponent(t, env.spare, env.spareSecret, nil)
		_, err := component.Dial(waitCtx(t, 10*time.Second), "tcp", env.compAddr, env.spare, env.spareSecret)
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

func TestComponentToComponentThroughProsody(t *testing.T) {
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
