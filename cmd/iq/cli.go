package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/xmpp-iq/iq"
)

// Exit codes: what a script can tell apart without parsing the output.
const (
	exitResult      = 0 // a result reply
	exitFailure     = 1 // anything else: usage, login, connection, bad payload
	exitStanzaError = 2 // an error reply
	exitTimeout     = 3 // no reply within --timeout
)

// Namespaces of the shortcuts.
const (
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
	nsPing       = "urn:xmpp:ping"
	nsVersion    = "jabber:iq:version"
)

const usage = `iq sends one IQ get or set over XMPP and prints the reply.

Usage:
  iq get     [flags] [PAYLOAD]     send <iq type='get'> with PAYLOAD (XML) or --file
  iq set     [flags] [PAYLOAD]     send <iq type='set'>
  iq disco   info|items [flags]    service discovery (XEP-0030), --node optional
  iq ping    [flags]               XEP-0199 ping
  iq version [flags]               XEP-0092 software version

Log in as a client (--jid, --addr, password from the variable --password-env
names, or a prompt when stdin is a terminal; never from the command line), or
connect as a component (--component DOMAIN, secret from --secret-env).

Client logins go through the mellium adapter in plaintext (SASL PLAIN, no
TLS) and only to a loopback address: TLS is the adapter's job and it does
not do it yet, so this tool is for local and test servers.

Exit status: 0 result, 2 stanza error, 3 timeout, 1 anything else.

Flags (after the command):
`

// options is a parsed command line.
type options struct {
	cmd      string // get, set, disco, ping, version
	typ      iq.Type
	payload  *iq.Element // nil until read (get/set with --file or argument)
	arg      string      // the XML argument of get/set
	file     string
	to       string
	node     string
	jid      string
	addr     string
	passEnv  string
	comp     string
	compAddr string
	secEnv   string
	timeout  time.Duration
	json     bool
	console  bool
}

// errUsage marks a command line that cannot run; the message says why.
var flagErrHelp = flag.ErrHelp

// errUsage marks a command line that cannot run; the message says why.
var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// parseArgs parses args (without the program name). Flags may come before
// or after the positional arguments. help receives the usage text.
func parseArgs(args []string, help io.Writer) (*options, error) {
	if len(args) == 0 {
		fmt.Fprint(help, usage)
		return nil, usageErr("no command")
	}
	o := &options{cmd: args[0]}
	fs := flag.NewFlagSet("iq "+o.cmd, flag.ContinueOnError)
	fs.SetOutput(help)
	fs.Usage = func() { fmt.Fprint(help, usage); fs.PrintDefaults() }
	fs.StringVar(&o.to, "to", "", "address to send the IQ to (default: the server's domain, for a client)")
	fs.StringVar(&o.file, "file", "", "read the payload from this file (- for stdin)")
	fs.StringVar(&o.node, "node", "", "disco node")
	fs.StringVar(&o.jid, "jid", "", "client JID to log in as (user@domain)")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:5222", "client-to-server address (host:port, loopback only)")
	fs.StringVar(&o.passEnv, "password-env", "IQ_PASSWORD", "environment variable holding the password")
	fs.StringVar(&o.comp, "component", "", "connect as this component domain (XEP-0114) instead of a client")
	fs.StringVar(&o.compAddr, "component-addr", "127.0.0.1:5347", "component port address (host:port)")
	fs.StringVar(&o.secEnv, "secret-env", "IQ_COMPONENT_SECRET", "environment variable holding the component secret")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "how long to wait for the login and for the reply")
	fs.BoolVar(&o.json, "json", false, "print the reply as JSON")
	fs.BoolVar(&o.console, "xml-console", false, "print every stanza in and out on stderr")

	if o.cmd == "-h" || o.cmd == "--help" || o.cmd == "help" {
		fs.Usage()
		return nil, flag.ErrHelp
	}
	var pos []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return nil, err
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		rest = rest[1:]
	}
	switch o.cmd {
	case "get", "set":
		o.typ = iq.Type(o.cmd)
		switch {
		case len(pos) > 1:
			return nil, usageErr("%s takes one payload argument, got %d", o.cmd, len(pos))
		case len(pos) == 1 && o.file != "":
			return nil, usageErr("give the payload as an argument or --file, not both")
		case len(pos) == 0 && o.file == "":
			return nil, usageErr("%s needs a payload: an XML argument or --file", o.cmd)
		case len(pos) == 1:
			o.arg = pos[0]
		}
	case "disco":
		if len(pos) != 1 || (pos[0] != "info" && pos[0] != "items") {
			return nil, usageErr("disco takes info or items")
		}
		o.typ = iq.TypeGet
		ns := nsDiscoInfo
		if pos[0] == "items" {
			ns = nsDiscoItems
		}
		o.payload = iq.NewElement(ns, "query")
		if o.node != "" {
			o.payload.SetAttr("node", o.node)
		}
	case "ping", "version":
		if len(pos) != 0 {
			return nil, usageErr("%s takes no argument", o.cmd)
		}
		o.typ = iq.TypeGet
		if o.cmd == "ping" {
			o.payload = iq.NewElement(nsPing, "ping")
		} else {
			o.payload = iq.NewElement(nsVersion, "query")
		}
	default:
		return nil, usageErr("unknown command %q (get, set, disco, ping, version)", o.cmd)
	}
	if o.file != "" && o.cmd != "get" && o.cmd != "set" {
		return nil, usageErr("--file is for get and set")
	}
	if o.node != "" && o.cmd != "disco" {
		return nil, usageErr("--node is for disco")
	}
	if o.timeout <= 0 {
		return nil, usageErr("--timeout must be positive")
	}
	if o.comp == "" {
		if o.jid == "" {
			return nil, usageErr("--jid is required (or --component)")
		}
		j, err := iq.ParseJID(o.jid)
		if err != nil || j.Localpart() == "" {
			return nil, usageErr("--jid %q is not a user@domain address", o.jid)
		}
		if o.to == "" {
			o.to = j.Domain().String()
		}
	} else if o.to == "" {
		return nil, usageErr("--to is required with --component")
	}
	return o, nil
}

// readPayload returns the one element of get/set's payload, from the
// argument or the file (stdin for -).
func readPayload(o *options, stdin io.Reader) (*iq.Element, error) {
	if o.payload != nil {
		return o.payload, nil
	}
	var data []byte
	switch {
	case o.file == "-":
		b, err := io.ReadAll(io.LimitReader(stdin, maxPayload+1))
		if err != nil {
			return nil, fmt.Errorf("read payload from stdin: %w", err)
		}
		data = b
	case o.file != "":
		f, err := os.Open(o.file)
		if err != nil {
			return nil, fmt.Errorf("read payload: %w", err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxPayload+1))
		if err != nil {
			return nil, fmt.Errorf("read payload: %w", err)
		}
		data = b
	default:
		data = []byte(o.arg)
	}
	if len(data) > maxPayload {
		return nil, fmt.Errorf("payload: larger than %d bytes", maxPayload)
	}
	return parsePayload(data)
}

// maxPayload bounds what is read for a payload.
const maxPayload = 1 << 20

// parsePayload parses exactly one element, with nothing but white space
// (and comments) around it.
func parsePayload(data []byte) (*iq.Element, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	var el *iq.Element
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("payload: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if el != nil {
				return nil, errors.New("payload: more than one element")
			}
			el = new(iq.Element)
			if err := d.DecodeElement(el, &t); err != nil {
				return nil, fmt.Errorf("payload: %w", err)
			}
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, errors.New("payload: text outside the element")
			}
		case xml.ProcInst, xml.Comment:
		default:
			return nil, fmt.Errorf("payload: unexpected %T", tok)
		}
	}
	if el == nil {
		return nil, errors.New("payload: no element")
	}
	if el.Name.Space == "" {
		return nil, errors.New("payload: the element needs a namespace (xmlns)")
	}
	return el, nil
}

// exitCode maps the outcome of a request to the process's exit status.
func exitCode(err error) int {
	var serr *iq.StanzaError
	switch {
	case err == nil:
		return exitResult
	case errors.As(err, &serr):
		return exitStanzaError
	case errors.Is(err, iq.ErrTimeout):
		return exitTimeout
	default:
		return exitFailure
	}
}

// jsonReply is the --json form of a reply.
type jsonReply struct {
	Type    string     `json:"type"`
	ID      string     `json:"id,omitempty"`
	From    string     `json:"from,omitempty"`
	To      string     `json:"to,omitempty"`
	Payload string     `json:"payload,omitempty"` // the child element, as XML
	Error   *jsonError `json:"error,omitempty"`
}

type jsonError struct {
	Type      string `json:"type"`
	Condition string `json:"condition"`
	Text      string `json:"text,omitempty"`
}

// formatReply writes resp as indented XML, or as one JSON object.
func formatReply(w io.Writer, resp *iq.IQ, asJSON bool) error {
	if asJSON {
		j := jsonReply{Type: string(resp.Type), ID: resp.ID, From: resp.From, To: resp.To}
		if resp.Payload != nil {
			j.Payload = resp.Payload.String()
		}
		if resp.Error != nil {
			j.Error = &jsonError{Type: string(resp.Error.Type), Condition: string(resp.Error.Condition), Text: resp.Error.Text}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(j)
	}
	raw, err := resp.AppendXML(nil)
	if err != nil {
		return err
	}
	out, err := indentXML(raw)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", out)
	return err
}

// indentXML re-encodes raw with two-space indentation, dropping white
// space between elements, keeping namespaces as declared.
func indentXML(raw []byte) ([]byte, error) {
	d := xml.NewDecoder(bytes.NewReader(raw))
	var buf bytes.Buffer
	depth := 0
	var text strings.Builder
	lastWasStart := false
	flushText := func() {
		if s := strings.TrimSpace(text.String()); s != "" {
			_ = xml.EscapeText(&buf, []byte(s))
			lastWasStart = false
			text.Reset()
			return
		}
		text.Reset()
	}
	pendingClose := false
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if pendingClose {
				buf.WriteString(">")
				pendingClose = false
			}
			flushText()
			if buf.Len() > 0 {
				buf.WriteString("\n" + strings.Repeat("  ", depth))
			}
			buf.WriteString("<" + qname(t.Name))
			for _, a := range t.Attr {
				buf.WriteString(" " + qname(a.Name) + "=\"")
				_ = xml.EscapeText(&buf, []byte(a.Value))
				buf.WriteString("\"")
			}
			pendingClose = true
			lastWasStart = true
			depth++
		case xml.EndElement:
			depth--
			hasText := strings.TrimSpace(text.String()) != ""
			if pendingClose && !hasText {
				buf.WriteString("/>")
				pendingClose = false
				lastWasStart = false
				text.Reset()
				continue
			}
			if pendingClose {
				buf.WriteString(">")
				pendingClose = false
			}
			wasStart := lastWasStart
			flushText()
			if !wasStart && !hasText {
				buf.WriteString("\n" + strings.Repeat("  ", depth))
			}
			buf.WriteString("</" + qname(t.Name) + ">")
			lastWasStart = false
		case xml.CharData:
			text.Write(t)
		}
	}
	return buf.Bytes(), nil
}

func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}
