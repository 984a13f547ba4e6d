// Package goxmppiq plugs an iq.Endpoint into a logged-in
// github.com/xmppo/go-xmpp client: the Endpoint's Sender writes through the
// client, every <iq> that (*xmpp.Client).Recv hands out reaches the Endpoint
// once, the local JID is the bound one (Client.JID), and the end of the
// session (Recv's error) closes the Endpoint with that cause, so that
// pending requests fail with iq.ErrClosed.
//
// It is the module github.com/xmpp-iq/iq/adapter/goxmpp, one of the
// repository's adapters, each a module of its own under adapter/.
//
// # How the IQs get through
//
// go-xmpp reads its stream only in Recv, which decodes every <iq> into a
// value of its own and keeps no raw XML: Adapter.Serve calls Recv in a loop
// and rebuilds an iq.IQ from what it returns (an xmpp.IQ: id, from, to,
// type, the first payload element with its attributes and inner XML, and
// for an error its type, condition and text; an xmpp.DiscoResult or
// xmpp.DiscoItems for disco results). Every other value (messages,
// presence, …) goes to the function given to Serve. Writes go through
// (*xmpp.Client).SendOrg, one whole stanza per call, serialised among the
// Sender's callers; each is a single Write on the connection, which Go's
// net package does not interleave with go-xmpp's own writes.
//
// # What stays out of reach through go-xmpp's public API
//
//   - Recv answers a ping get (urn:xmpp:ping) and a version get
//     (jabber:iq:version: its Options' software version, or
//     service-unavailable) itself and returns nothing: those requests never
//     reach the Endpoint, and a Callee handler for them never runs. Each
//     still gets exactly one reply, go-xmpp's.
//   - Results go-xmpp matches to requests of its own making (its periodic
//     pings, pubsub and avatar requests) stay with go-xmpp; an HTTP upload
//     slot result (urn:xmpp:http:upload:0) comes back as an xmpp.Slot and
//     is handed to the other-stanzas function, not to the Caller.
//   - Disco#info and disco#items results are rebuilt from go-xmpp's
//     DiscoResult and DiscoItems: features, identities and items come
//     through, the node attribute and extended info forms do not.
//   - Only the first payload element of an <iq> is kept; namespace prefixes
//     it uses that are declared on the <iq> itself, and namespaced
//     attributes on it, are lost. A stanza error keeps its type, defined
//     condition and text; an application-specific condition is lost (and,
//     if it comes after the defined one, takes its place).
//   - Recv refuses (with an error that ends Serve) any top-level element it
//     does not know; it is go-xmpp's stream.
//   - go-xmpp's Close is not safe to call while Recv runs: when its context
//     is done, Serve writes </stream:stream> and waits, at most two seconds,
//     for the server to close its stream and Recv to return, before calling
//     Close.
package goxmppiq

import (
	"context"
	"encoding/xml"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/xmpp-iq/iq"
	"github.com/xmppo/go-xmpp"
)

// closeGrace bounds the wait for the server's </stream:stream> when Serve's
// context ends.
const closeGrace = 2 * time.Second

// Sender is an iq.Sender that writes IQs through a go-xmpp client, one whole
// stanza per write, one write at a time. It is safe for concurrent use.
type Sender struct {
	client *xmpp.Client
	mu     sync.Mutex
}

// NewSender returns a Sender writing through c. It panics if c is nil.
func NewSender(c *xmpp.Client) *Sender {
	if c == nil {
		panic("goxmppiq: NewSender: nil client")
	}
	return &Sender{client: c}
}

// SendIQ implements iq.Sender. It writes in without from (the server stamps
// the bound address on what a client sends) in the stream's namespace. It
// gives up, having written nothing, if ctx is done before its turn; a write
// under way cannot be cut short (go-xmpp exposes no deadline). An IQ that
// does not encode fails with an error wrapping iq.ErrEncode. It panics if in
// is nil.
func (s *Sender) SendIQ(ctx context.Context, in *iq.IQ) error {
	if in == nil {
		panic("goxmppiq: Sender.SendIQ: nil IQ")
	}
	if in.From != "" {
		out := *in
		out.From = ""
		in = &out
	}
	b, err := in.AppendXML(nil)
	if err != nil {
		return fmt.Errorf("goxmppiq: encode iq %s: %w", in.ID, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := s.client.SendOrg(string(b)); err != nil {
		return fmt.Errorf("goxmppiq: send iq %s: %w", in.ID, err)
	}
	return nil
}

// Adapter joins an iq.Endpoint to a go-xmpp client.
type Adapter struct {
	// Endpoint is the Caller and Callee on this client. Register Callee
	// handlers before Serve starts.
	Endpoint *iq.Endpoint
	// Sender is what Endpoint sends through.
	Sender *Sender

	client *xmpp.Client
}

// New returns an Adapter for c, a logged-in client (xmpp.NewClient or
// Options.NewClient returned it). Its Endpoint is configured by opts, after
// iq.WithLocalJID with the bound address (c.JID()); an iq.WithLocalJID among
// opts overrides it. New panics if c is nil.
func New(c *xmpp.Client, opts ...iq.Option) *Adapter {
	if c == nil {
		panic("goxmppiq: New: nil client")
	}
	snd := NewSender(c)
	all := opts
	if local := c.JID(); local != "" {
		all = append([]iq.Option{iq.WithLocalJID(local)}, opts...)
	}
	return &Adapter{Endpoint: iq.NewEndpoint(snd, all...), Sender: snd, client: c}
}

// Client returns the client the Adapter was made for.
func (a *Adapter) Client() *xmpp.Client { return a.client }

// Serve calls the client's Recv until it fails, handing every IQ to the
// Endpoint (which returns at once: handlers run on goroutines of their own,
// with contexts derived from ctx) and every other value Recv returns to
// other (nil: dropped), on Serve's goroutine. Recv errors that leave the
// stream usable (go-xmpp's failures to parse a disco or avatar payload) go
// to other as well, as an error value; any other ends Serve.
//
// Serve returns Recv's error (leaving the client to its caller), or
// context.Cause(ctx) once ctx is done, having closed the client (see the
// package documentation for how). Either
// way it closes the Endpoint with that cause, so that pending and later
// requests fail with an error wrapping iq.ErrClosed and the cause. Call
// Serve once; do not call Recv meanwhile.
func (a *Adapter) Serve(ctx context.Context, other func(any)) (err error) {
	type recv struct {
		v   any
		err error
	}
	ch := make(chan recv)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			v, err := a.client.Recv()
			if err != nil && !fatal(v) {
				v, err = err, nil
			}
			select {
			case ch <- recv{v, err}:
			case <-quit:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer close(quit)
	for {
		select {
		case r := <-ch:
			if r.err != nil {
				a.Endpoint.CloseWithError(r.err)
				return r.err
			}
			if in := toIQ(r.v); in != nil {
				a.Endpoint.Receive(ctx, in)
			} else if other != nil {
				other(r.v)
			}
		case <-ctx.Done():
			cause := context.Cause(ctx)
			a.Endpoint.CloseWithError(cause)
			a.Sender.mu.Lock() // not inside a stanza of the Sender's
			_, _ = a.client.SendOrg("</stream:stream>")
			a.Sender.mu.Unlock()
			t := time.NewTimer(closeGrace)
			defer t.Stop()
		drain:
			for {
				select {
				case r := <-ch:
					if r.err != nil {
						break drain
					}
				case <-t.C:
					break drain
				}
			}
			_ = a.client.Close()
			return cause
		}
	}
}

// fatal reports whether Recv's error, returned with v, ended the stream:
// go-xmpp returns an empty Chat with those, and a value of the type it was
// parsing with the ones that leave the stream usable.
func fatal(v any) bool {
	_, ok := v.(xmpp.Chat)
	return ok || v == nil
}

// toIQ rebuilds the <iq> that Recv turned into v, or returns nil if v is
// not one.
func toIQ(v any) *iq.IQ {
	var b strings.Builder
	switch v := v.(type) {
	case xmpp.IQ:
		head(&b, v.ID, v.From, v.To, v.Type)
		if q := string(v.Query); q != "" && !strings.HasPrefix(q, "<XMLElement>") {
			// A payload-less result or error comes back as an empty
			// XMLElement marshalled under its type's name.
			b.WriteString(dedupXMLNS(q))
		}
		if v.Type == "error" {
			fmt.Fprintf(&b, "<error type='%s'>", attr(v.Error.Type))
			if v.Error.Condition != "" {
				fmt.Fprintf(&b, "<%s xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>", v.Error.Condition)
			}
			if v.Error.Text != "" {
				fmt.Fprintf(&b, "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>%s</text>", text(v.Error.Text))
			}
			b.WriteString("</error>")
		}
	case xmpp.DiscoResult:
		head(&b, v.ID, v.From, v.To, "result")
		b.WriteString("<query xmlns='http://jabber.org/protocol/disco#info'>")
		for _, id := range v.Identities {
			fmt.Fprintf(&b, "<identity category='%s' type='%s' name='%s'/>", attr(id.Category), attr(id.Type), attr(id.Name))
		}
		for _, f := range v.Features {
			fmt.Fprintf(&b, "<feature var='%s'/>", attr(f))
		}
		b.WriteString("</query>")
	case xmpp.DiscoItems:
		head(&b, v.ID, v.Jid, "", "result")
		b.WriteString("<query xmlns='http://jabber.org/protocol/disco#items'>")
		for _, it := range v.Items {
			fmt.Fprintf(&b, "<item jid='%s'", attr(it.Jid))
			if it.Name != "" {
				fmt.Fprintf(&b, " name='%s'", attr(it.Name))
			}
			if it.Node != "" {
				fmt.Fprintf(&b, " node='%s'", attr(it.Node))
			}
			b.WriteString("/>")
		}
		b.WriteString("</query>")
	default:
		return nil
	}
	b.WriteString("</iq>")
	// iq's own decoder, which reads what xml.Unmarshal into an IQ would.
	in, err := parseIQ(b.String())
	if err != nil {
		// What go-xmpp kept does not parse (a prefix declared on the <iq>,
		// say): a request still gets its one reply, bad-request, from a
		// payload-less copy; a response is dropped and its request times
		// out.
		if r, ok := v.(xmpp.IQ); ok && (r.Type == "get" || r.Type == "set") {
			return &iq.IQ{ID: r.ID, From: r.From, To: r.To, Type: iq.Type(r.Type)}
		}
		return nil
	}
	return in
}

func head(b *strings.Builder, id, from, to, typ string) {
	fmt.Fprintf(b, "<iq xmlns='jabber:client' id='%s' type='%s'", attr(id), attr(typ))
	if from != "" {
		fmt.Fprintf(b, " from='%s'", attr(from))
	}
	if to != "" {
		fmt.Fprintf(b, " to='%s'", attr(to))
	}
	b.WriteString(">")
}

// attr escapes s for a quoted attribute value (both quotes escaped).
func attr(s string) string { return text(s) }

// text escapes s for character data.
func text(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// dedupXMLNS rewrites the start tag of the element go-xmpp marshalled: it
// keeps the element's namespace both as its name's space and among its
// attributes, and so writes xmlns twice. The first of each attribute is
// kept; the rest of q is left as it is.
func dedupXMLNS(q string) string {
	d := xml.NewDecoder(strings.NewReader(q))
	tok, err := d.RawToken()
	start, ok := tok.(xml.StartElement)
	if err != nil || !ok {
		return q
	}
	rest := q[d.InputOffset():]
	var b strings.Builder
	b.WriteString("<")
	b.WriteString(qname(start.Name))
	seen := map[xml.Name]bool{}
	for _, a := range start.Attr {
		if seen[a.Name] {
			continue
		}
		seen[a.Name] = true
		fmt.Fprintf(&b, " %s='%s'", qname(a.Name), attr(a.Value))
	}
	if rest == "" {
		b.WriteString("/>")
	} else {
		b.WriteString(">")
		b.WriteString(rest)
	}
	return b.String()
}

// qname is a raw token's name as it was written, prefix:local.
func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// parseIQ reads a rebuilt <iq> with iq's own decoder (ParseElement, which
// accepts and refuses what xml.Unmarshal into an IQ does, several times
// faster), as an IQ.
func parseIQ(x string) (*iq.IQ, error) {
	el, err := iq.ParseElement([]byte(x))
	if err != nil {
		return nil, err
	}
	return iq.IQFromElement(el)
}
