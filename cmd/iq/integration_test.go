package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq/component"
)

// server is the XMPP server the IQ_XMPP_* variables describe (as
// scripts/prosody.sh and scripts/ejabberd.sh write them in their env file).
type server struct {
	name, c2s, compAddr, domain string
	comp, compSecret            string
	spare, spareSecret          string
	users                       map[string]string
}

// needServer reads the server's variables inside the test (so that go
// test's cache keys on them), and skips, or fails when
// IQ_REQUIRE_INTEGRATION=1, when there is none.
func needServer(t *testing.T) server {
	t.Helper()
	noCache(t)
	s := server{
		name: os.Getenv("IQ_XMPP_SERVER"), c2s: os.Getenv("IQ_XMPP_C2S_ADDR"),
		compAddr: os.Getenv("IQ_XMPP_COMPONENT_ADDR"), domain: os.Getenv("IQ_XMPP_DOMAIN"),
		comp: os.Getenv("IQ_XMPP_COMPONENT2"), compSecret: os.Getenv("IQ_XMPP_COMPONENT2_SECRET"),
		spare: os.Getenv("IQ_XMPP_SPARE_COMPONENT"), spareSecret: os.Getenv("IQ_XMPP_SPARE_SECRET"),
		users: map[string]string{},
	}
	for _, u := range strings.Fields(os.Getenv("IQ_XMPP_USERS")) {
		name, pass, _ := strings.Cut(u, ":")
		s.users[name] = pass
	}
	if s.c2s == "" || s.compAddr == "" {
		const why = "no XMPP server configured (IQ_XMPP_C2S_ADDR and IQ_XMPP_COMPONENT_ADDR unset): " +
			"run scripts/prosody.sh start or scripts/ejabberd.sh start and load its env file"
		if os.Getenv("IQ_REQUIRE_INTEGRATION") == "1" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	return s
}

// noCachePath is opened by every run that needs a server and touched by
// TestMain as the run ends: go test does not cache a result when a file of
// the module the test opened changed under two seconds before, and the
// server's state is not something go test can see (the file is
// git-ignored).
const noCachePath = ".nocache"

var noCacheOnce sync.Once

func noCache(t *testing.T) {
	t.Helper()
	var err error
	noCacheOnce.Do(func() {
		err = os.WriteFile(noCachePath, []byte("touched by every run so that go test never caches the integration tests\n"), 0o644)
		if err == nil {
			var f *os.File
			if f, err = os.Open(noCachePath); err == nil {
				err = f.Close()
			}
		}
	})
	require.NoError(t, err, "cannot make this run uncacheable")
}

func TestMain(m *testing.M) {
	code := m.Run()
	now := time.Now()
	_ = os.Chtimes(noCachePath, now, now)
	os.Exit(code)
}

// runIQ runs the command in-process with the given variables.
func runIQ(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := env{getenv: func(k string) string { return vars[k] }, stdin: strings.NewReader(""), stdout: &out, stderr: &errOut}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code = run(ctx, args, e)
	t.Logf("iq %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

// Each exit status, reached against the real server.
func TestIntegrationExitCodes(t *testing.T) {
	s := needServer(t)
	client := []string{"--jid", "alice@" + s.domain, "--addr", s.c2s}
	alice := map[string]string{"IQ_PASSWORD": s.users["alice"]}
	wantName := map[string]string{"prosody": "Prosody", "ejabberd": "ejabberd"}[s.name]
	require.NotEmpty(t, wantName, "IQ_XMPP_SERVER=%q", s.name)

	t.Run("0 result: the server's version", func(t *testing.T) {
		code, out, _ := runIQ(t, alice, append([]string{"version"}, client...)...)
		assert.Equal(t, exitResult, code)
		assert.Contains(t, out, `<iq type="result"`)
		assert.Contains(t, out, "\n  <query xmlns=\"jabber:iq:version\">\n    <name>"+wantName+"</name>\n")
	})

	t.Run("0 result: disco info as JSON", func(t *testing.T) {
		code, out, _ := runIQ(t, alice, append([]string{"disco", "info", "--json"}, client...)...)
		assert.Equal(t, exitResult, code)
		var j jsonReply
		require.NoError(t, json.Unmarshal([]byte(out), &j))
		assert.Equal(t, "result", j.Type)
		assert.Equal(t, s.domain, j.From)
		assert.Contains(t, j.Payload, `var="urn:xmpp:ping"`)
	})

	t.Run("0 result: ping as a component, with the XML console", func(t *testing.T) {
		vars := map[string]string{"SECRET": s.compSecret}
		code, out, errOut := runIQ(t, vars, "ping", "--component", s.comp, "--component-addr", s.compAddr,
			"--secret-env", "SECRET", "--to", s.domain, "--xml-console")
		assert.Equal(t, exitResult, code)
		assert.Contains(t, out, `<iq type="result"`)
		assert.Contains(t, errOut, `>> <iq`)
		assert.Contains(t, errOut, `urn:xmpp:ping`)
		assert.Contains(t, errOut, `<< <iq`)
		assert.NotContains(t, errOut, s.compSecret)
		assert.NotContains(t, errOut, "handshake", "the console starts after the handshake")
	})

	t.Run("2 stanza error: an unknown namespace", func(t *testing.T) {
		code, out, errOut := runIQ(t, alice, append([]string{"get", "--json", `<q xmlns="urn:example:iq-cli:unknown"/>`}, client...)...)
		assert.Equal(t, exitStanzaError, code)
		var j jsonReply
		require.NoError(t, json.Unmarshal([]byte(out), &j))
		assert.Equal(t, "error", j.Type)
		require.NotNil(t, j.Error)
		assert.Equal(t, "cancel", j.Error.Type)
		assert.Equal(t, "service-unavailable", j.Error.Condition)
		assert.Contains(t, errOut, "iq: stanza error cancel/service-unavailable")
		assert.NotContains(t, errOut, "iq: iq:")
	})

	t.Run("3 timeout: a silent component", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := component.Dial(ctx, "tcp", s.compAddr, s.spare, s.spareSecret)
		require.NoError(t, err)
		got := make(chan string, 10)
		go func() { // read and never answer
			for {
				el, err := conn.ReadElement()
				if err != nil {
					close(got)
					return
				}
				got <- el.String()
			}
		}()
		defer func() { conn.Close(); <-got }()

		start := time.Now()
		code, out, errOut := runIQ(t, alice, append([]string{"ping", "--to", s.spare, "--timeout", "1s"}, client...)...)
		assert.Equal(t, exitTimeout, code)
		assert.GreaterOrEqual(t, time.Since(start), time.Second)
		assert.Empty(t, out)
		assert.Contains(t, errOut, "timed out")
		select {
		case el := <-got:
			assert.Contains(t, el, "urn:xmpp:ping", "the silent peer got the request")
		case <-time.After(5 * time.Second):
			t.Error("the silent peer got nothing")
		}
	})

	t.Run("1 anything else: a wrong password", func(t *testing.T) {
		code, out, errOut := runIQ(t, map[string]string{"IQ_PASSWORD": "wrong-" + s.users["alice"]}, append([]string{"ping"}, client...)...)
		assert.Equal(t, exitFailure, code)
		assert.Empty(t, out)
		assert.Contains(t, errOut, "iq: log in as alice@"+s.domain)
	})

	t.Run("1 anything else: a wrong component secret", func(t *testing.T) {
		code, out, errOut := runIQ(t, map[string]string{"SECRET": "wrong"}, "ping", "--component", s.comp,
			"--component-addr", s.compAddr, "--secret-env", "SECRET", "--to", s.domain)
		assert.Equal(t, exitFailure, code)
		assert.Empty(t, out)
		assert.Contains(t, errOut, "component: handshake as "+s.comp)
	})
}
