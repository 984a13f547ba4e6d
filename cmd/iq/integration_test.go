package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq/component"
	"github.com/xmpp-iq/iq/internal/servertest"
)

func TestMain(m *testing.M) {
	os.Exit(servertest.Run(m, "cmd/iq", nil))
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
	s := servertest.Need(t)
	client := []string{"--jid", "alice@" + s.Domain, "--addr", s.C2SAddr}
	alice := map[string]string{"IQ_PASSWORD": s.Users["alice"]}
	wantName := map[string]string{"prosody": "Prosody", "ejabberd": "ejabberd"}[s.Server]
	require.NotEmpty(t, wantName, "IQ_XMPP_SERVER=%q", s.Server)

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
		assert.Equal(t, s.Domain, j.From)
		assert.Contains(t, j.Payload, `var="urn:xmpp:ping"`)
	})

	t.Run("0 result: ping as a component, with the XML console", func(t *testing.T) {
		vars := map[string]string{"SECRET": s.Comp2Secret}
		code, out, errOut := runIQ(t, vars, "ping", "--component", s.Comp2, "--component-addr", s.CompAddr,
			"--secret-env", "SECRET", "--to", s.Domain, "--xml-console")
		assert.Equal(t, exitResult, code)
		assert.Contains(t, out, `<iq type="result"`)
		assert.Contains(t, errOut, `>> <iq`)
		assert.Contains(t, errOut, `urn:xmpp:ping`)
		assert.Contains(t, errOut, `<< <iq`)
		assert.NotContains(t, errOut, s.Comp2Secret)
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
		conn, err := component.Dial(ctx, "tcp", s.CompAddr, s.Spare, s.SpareSecret)
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
		code, out, errOut := runIQ(t, alice, append([]string{"ping", "--to", s.Spare, "--timeout", "1s"}, client...)...)
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
		code, out, errOut := runIQ(t, map[string]string{"IQ_PASSWORD": "wrong-" + s.Users["alice"]}, append([]string{"ping"}, client...)...)
		assert.Equal(t, exitFailure, code)
		assert.Empty(t, out)
		assert.Contains(t, errOut, "iq: log in as alice@"+s.Domain)
	})

	t.Run("1 anything else: a wrong component secret", func(t *testing.T) {
		code, out, errOut := runIQ(t, map[string]string{"SECRET": "wrong"}, "ping", "--component", s.Comp2,
			"--component-addr", s.CompAddr, "--secret-env", "SECRET", "--to", s.Domain)
		assert.Equal(t, exitFailure, code)
		assert.Empty(t, out)
		assert.Contains(t, errOut, "component: handshake as "+s.Comp2)
	})
}
