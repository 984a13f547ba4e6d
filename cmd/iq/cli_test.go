package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" for success
		check   func(t *testing.T, o *options)
	}{
		{name: "get with payload, flags after", args: []string{"get", "--jid", "a@example.com", `<q xmlns="urn:x"/>`, "--to", "b@example.com", "--timeout", "2s", "--json"},
			check: func(t *testing.T, o *options) {
				assert.Equal(t, iq.TypeGet, o.typ)
				assert.Equal(t, `<q xmlns="urn:x"/>`, o.arg)
				assert.Equal(t, "b@example.com", o.to)
				assert.Equal(t, 2*time.Second, o.timeout)
				assert.True(t, o.json)
				assert.Equal(t, "IQ_PASSWORD", o.passEnv)
			}},
		{name: "set from file", args: []string{"set", "--jid", "a@example.com", "--file", "p.xml"},
			check: func(t *testing.T, o *options) {
				assert.Equal(t, iq.TypeSet, o.typ)
				assert.Equal(t, "p.xml", o.file)
			}},
		{name: "to defaults to the client's domain", args: []string{"ping", "--jid", "a@example.com"},
			check: func(t *testing.T, o *options) {
				assert.Equal(t, "example.com", o.to)
				assert.Equal(t, nsPing, o.payload.Name.Space)
			}},
		{name: "disco info", args: []string{"disco", "info", "--to", "x.example", "--jid", "a@example.com"},
			check: func(t *testing.T, o *options) {
				assert.Equal(t, nsDiscoInfo, o.payload.Name.Space)
				assert.Equal(t, "query", o.payload.Name.Local)
				assert.Equal(t, "x.example", o.to)
			}},
		{name: "disco items with node", args: []string{"disco", "items", "--node", "n1", "--jid", "a@example.com"},
			check: func(t *testing.T, o *options) {
				assert.Equal(t, nsDiscoItems, o.payload.Name.Space)
				assert.Equal(t, "n1", o.payload.AttrValue("node"))
			}},
		{name: "version as a component", args: []string{"version", "--component", "c.example", "--secret-env", "S", "--to", "example.com", "--xml-console"},
			check: func(t *testing.T, o *options) {
				assert.Equal(t, "c.example", o.comp)
				assert.Equal(t, "S", o.secEnv)
				assert.True(t, o.console)
				assert.Equal(t, nsVersion, o.payload.Name.Space)
			}},
		{name: "no command", args: nil, wantErr: "no command"},
		{name: "unknown command", args: []string{"post"}, wantErr: "unknown command"},
		{name: "get without payload", args: []string{"get", "--jid", "a@example.com"}, wantErr: "needs a payload"},
		{name: "get with payload and file", args: []string{"get", "--jid", "a@example.com", "--file", "f", "<a/>"}, wantErr: "not both"},
		{name: "get with two payloads", args: []string{"get", "--jid", "a@example.com", "<a/>", "<b/>"}, wantErr: "one payload"},
		{name: "disco without kind", args: []string{"disco", "--jid", "a@example.com"}, wantErr: "info or items"},
		{name: "ping with argument", args: []string{"ping", "x", "--jid", "a@example.com"}, wantErr: "no argument"},
		{name: "file on a shortcut", args: []string{"ping", "--file", "f", "--jid", "a@example.com"}, wantErr: "--file is for get and set"},
		{name: "node off disco", args: []string{"ping", "--node", "n", "--jid", "a@example.com"}, wantErr: "--node is for disco"},
		{name: "no jid", args: []string{"ping"}, wantErr: "--jid is required"},
		{name: "jid without localpart", args: []string{"ping", "--jid", "example.com"}, wantErr: "not a user@domain"},
		{name: "component without to", args: []string{"ping", "--component", "c.example"}, wantErr: "--to is required"},
		{name: "zero timeout", args: []string{"ping", "--jid", "a@example.com", "--timeout", "0s"}, wantErr: "--timeout"},
		{name: "no password flag", args: []string{"ping", "--jid", "a@example.com", "--password", "x"}, wantErr: "not defined"},
		{name: "bad flag", args: []string{"ping", "--bogus"}, wantErr: "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var help bytes.Buffer
			o, err := parseArgs(tt.args, &help)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, o)
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"ping", "-h"}} {
		var out bytes.Buffer
		code := run(context.Background(), args, env{getenv: func(string) string { return "" }, stdout: &out, stderr: &out})
		assert.Equal(t, exitResult, code, args)
		assert.Contains(t, out.String(), "TLS is the adapter's job", args)
		assert.Contains(t, out.String(), "-password-env", args)
	}
}

func TestReadPayload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.xml")
	require.NoError(t, os.WriteFile(file, []byte("<?xml version='1.0'?>\n<!-- c -->\n<q xmlns='urn:x'><a>1</a></q>\n"), 0o600))
	tests := []struct {
		name    string
		o       options
		stdin   string
		want    string // the element's String, when no error
		wantErr string
	}{
		{name: "argument", o: options{arg: `<q xmlns="urn:x" k="v"/>`}, want: `<q xmlns="urn:x" k="v"/>`},
		{name: "file", o: options{file: file}, want: `<q xmlns="urn:x"><a>1</a></q>`},
		{name: "stdin", o: options{file: "-"}, stdin: ` <p xmlns="urn:y"/> `, want: `<p xmlns="urn:y"/>`},
		{name: "missing file", o: options{file: filepath.Join(dir, "none")}, wantErr: "no such file"},
		{name: "not XML", o: options{arg: `<q xmlns="urn:x">`}, wantErr: "payload"},
		{name: "two elements", o: options{arg: `<a xmlns="urn:x"/><b xmlns="urn:x"/>`}, wantErr: "more than one element"},
		{name: "text around", o: options{arg: `hi <a xmlns="urn:x"/>`}, wantErr: "text outside"},
		{name: "empty", o: options{arg: "  "}, wantErr: "no element"},
		{name: "no namespace", o: options{arg: `<a/>`}, wantErr: "namespace"},
		{name: "too big", o: options{file: "-"}, stdin: strings.Repeat(" ", maxPayload+1), wantErr: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			el, err := readPayload(&o, strings.NewReader(tt.stdin))
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, strings.ReplaceAll(el.String(), "'", `"`))
		})
	}
}

func TestFormatReply(t *testing.T) {
	result := &iq.IQ{Type: iq.TypeResult, ID: "i1", From: "example.com", To: "a@example.com/r",
		Payload: iq.NewElement(nsVersion, "query").Append(
			iq.NewElement(nsVersion, "name").AppendText("Srv & co"),
			iq.NewElement(nsVersion, "os"))}
	errReply := &iq.IQ{Type: iq.TypeError, ID: "i2", From: "example.com",
		Error: iq.NewError(iq.Cancel, iq.ServiceUnavailable, "no such thing")}
	tests := []struct {
		name string
		resp *iq.IQ
		json bool
		want string
	}{
		{name: "result as XML", resp: result, want: `<iq type="result" id="i1" to="a@example.com/r" from="example.com">
  <query xmlns="jabber:iq:version">
    <name>Srv &amp; co</name>
    <os/>
  </query>
</iq>
`},
		{name: "empty result as XML", resp: &iq.IQ{Type: iq.TypeResult, ID: "i3"}, want: `<iq type="result" id="i3"/>
`},
		{name: "result as JSON", resp: result, json: true, want: `{
  "type": "result",
  "id": "i1",
  "from": "example.com",
  "to": "a@example.com/r",
  "payload": "<query xmlns=\"jabber:iq:version\"><name>Srv &amp; co</name><os/></query>"
}
`},
		{name: "error as JSON", resp: errReply, json: true, want: `{
  "type": "error",
  "id": "i2",
  "from": "example.com",
  "error": {
    "type": "cancel",
    "condition": "service-unavailable",
    "text": "no such thing"
  }
}
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, formatReply(&out, tt.resp, tt.json))
			assert.Equal(t, tt.want, strings.ReplaceAll(out.String(), `'`, `"`))
		})
	}
}

func TestFormatReplyErrorXML(t *testing.T) {
	var out bytes.Buffer
	resp := &iq.IQ{Type: iq.TypeError, ID: "i2", Error: iq.NewError(iq.Cancel, iq.ServiceUnavailable, "")}
	require.NoError(t, formatReply(&out, resp, false))
	assert.Contains(t, out.String(), "\n  <error type=\"cancel\">\n    <service-unavailable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>\n  </error>\n</iq>\n")
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{name: "result", err: nil, want: 0},
		{name: "stanza error", err: iq.NewError(iq.Cancel, iq.ServiceUnavailable, ""), want: 2},
		{name: "wrapped stanza error", err: fmt.Errorf("x: %w", iq.NewError(iq.Auth, iq.Forbidden, "")), want: 2},
		{name: "timeout", err: fmt.Errorf("x: %w", iq.ErrTimeout), want: 3},
		{name: "closed", err: iq.ErrClosed, want: 1},
		{name: "other", err: errors.New("dial: refused"), want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, exitCode(tt.err)) })
	}
}

// Exit status 1 for what fails before any connection.
func TestRunFailsEarly(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		prompt  func(string) (string, error)
		wantErr string
	}{
		{name: "usage", args: []string{"post"}, wantErr: "unknown command"},
		{name: "bad payload", args: []string{"get", "--jid", "a@localhost", "<a/>"}, wantErr: "namespace"},
		{name: "no password, no terminal", args: []string{"ping", "--jid", "a@localhost"}, wantErr: "$IQ_PASSWORD is empty"},
		{name: "prompt fails", args: []string{"ping", "--jid", "a@localhost"},
			prompt: func(string) (string, error) { return "", errors.New("EOF") }, wantErr: "password: EOF"},
		{name: "not loopback", args: []string{"ping", "--jid", "a@example.com", "--addr", "192.0.2.1:5222", "--password-env", "P"}, wantErr: "not a loopback"},
		{name: "no component secret", args: []string{"ping", "--component", "c.localhost", "--to", "localhost", "--secret-env", "NONE"}, wantErr: "$NONE is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			e := env{getenv: func(k string) string {
				if k == "P" {
					return "pw"
				}
				return ""
			}, stdout: &stdout, stderr: &stderr, prompt: tt.prompt}
			assert.Equal(t, exitFailure, run(context.Background(), tt.args, e))
			assert.Contains(t, stderr.String(), tt.wantErr)
			assert.Empty(t, stdout.String())
		})
	}
}
