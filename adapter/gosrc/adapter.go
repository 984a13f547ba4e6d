// Package gosrciq plugs an iq.Endpoint into a gosrc.io/xmpp client: a
// route that claims every <iq> hands each to the Endpoint once, the
// Endpoint's Sender writes through the client (Client.SendRaw, one whole
// stanza per call, serialised), the local JID is the bound one
// (Session.BindJid), and the end of the session (the client's error
// handler) closes the Endpoint with that cause, so that pending requests
// fail with iq.ErrClosed.
//
// It is the module github.com/xmpp-iq/iq/adapter/gosrc, one of the
// repository's adapters, each a module of its own under adapter/.
//
// # Why requests go through the Caller, not Client.SendIQ
//
// gosrc.io/xmpp's own SendIQ writes the request before it registers the
// route its reply is matched on: a reply that arrives in between finds no
// route and is lost. The Caller registers every request before it writes
// it, so no reply is lost that way; its requests never touch the router's
// IQ result routes.
//
// # How the IQs get through
//
// Connect adds one route to the router, matching every <iq>, and gives
// NewClient an error handler of its own. gosrc.io/xmpp decodes each <iq>
// into a stanza.IQ and keeps no raw XML: the route rebuilds an iq.IQ from
// it (id, from, to, type; the payload as gosrc re-encodes it, a registered
// extension from its Go type, any other element from its generic Node;
// for an error its type, defined condition and text) and hands it to the
// Endpoint, which answers requests through its Callee (one reply each,
// feature-not-implemented where no handler is registered) and matches
// results and errors to the Caller's requests.
//
// # What stays out of reach through gosrc.io/xmpp's public API
//
//   - Routes are tried in the order they were added, and the router offers
//     no way to put one first: an IQ route the caller added to the router
//     before Connect takes its IQs first, and those never reach the
//     Endpoint. Register IQ handlers on the Endpoint's Callee instead.
//   - The router matches every incoming <iq>, get and set included, against
//     the IQ result routes Client.SendIQ registers, by id alone, before any
//     route: an IQ whose id equals that of a request the caller sent with
//     SendIQ goes to SendIQ's channel, not to the Endpoint. Send requests
//     with the Endpoint's Caller.
//   - gosrc routes each stanza on a goroutine of its own, so IQs reach the
//     Endpoint in no guaranteed order.
//   - The payload is what gosrc's types keep: a registered extension (ping,
//     version, disco, roster, pubsub, …) is re-encoded from its Go struct
//     and loses what that struct has no field for; an unknown element keeps
//     its attributes, text and children, but text interleaved with children
//     comes out before them. A stanza error keeps its type, defined
//     condition and text; an application-specific condition is lost.
//   - When the server closes the stream cleanly (</stream:stream>), gosrc's
//     reader stops (waiting for Disconnect) without calling the error
//     handler or the event handler: nothing in the public API says so, and
//     the Endpoint stays open until Close; requests pending then end by
//     their own deadlines (iq.ErrTimeout), not with iq.ErrClosed. A server
//     that dies or a connection that breaks does reach the error handler.
package gosrciq

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/xmpp-iq/iq"
	"gosrc.io/xmpp"
	"gosrc.io/xmpp/stanza"
)

// ErrDisconnected is the cause the Endpoint is closed with by Close.
var ErrDisconnected = errors.New("gosrciq: disconnected")

// Sender is an iq.Sender that writes IQs through a gosrc.io/xmpp client,
// one whole stanza per write, one write at a time. It is safe for
// concurrent use.
type Sender struct {
	client *xmpp.Client
	mu     sync.Mutex
}

// NewSender returns a Sender writing through c. It panics if c is nil.
func NewSender(c *xmpp.Client) *Sender {
	if c == nil {
		panic("gosrciq: NewSender: nil client")
	}
	return &Sender{client: c}
}

// SendIQ implements iq.Sender. It writes in without from (the server stamps
// the bound address on what a client sends). It gives up, having written
// nothing, if ctx is done before its turn. An IQ that does not encode fails
// with an error wrapping iq.ErrEncode. It panics if in is nil.
func (s *Sender) SendIQ(ctx context.Context, in *iq.IQ) error {
	if in == nil {
		panic("gosrciq: Sender.SendIQ: nil IQ")
	}
	if in.From != "" {
		out := *in
		out.From = ""
		in = &out
	}
	b, err := in.AppendXML(nil)
	if err != nil {
		return fmt.Errorf("gosrciq: encode iq %s: %w", in.ID, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.client.SendRaw(string(b)); err != nil {
		return fmt.Errorf("gosrciq: send iq %s: %w", in.ID, err)
	}
	return nil
}

// Adapter joins an iq.Endpoint to a gosrc.io/xmpp client.
type Adapter struct {
	// Endpoint is the Caller and Callee on this client. Register Callee
	// handlers before Connect, in the setup function it takes.
	Endpoint *iq.Endpoint
	// Sender is what Endpoint sends through.
	Sender *Sender
	// Client is the connected client.
	Client *xmpp.Client

	ready chan struct{} // closed once Endpoint is set
}

// Connect makes a client with xmpp.NewClient(cfg, router, …), connects it
// and joins an Endpoint to it, configured by opts after iq.WithLocalJID
// with the bound address (an iq.WithLocalJID among opts overrides it).
// setup, if not nil, runs on the Endpoint before any IQ reaches it: register
// Callee handlers there. router may be nil (a new one is made); Connect adds
// a route for every <iq> to it, after the routes it has. onError, if not
// nil, is called with every error the client reports, after the Endpoint
// has been closed with it.
func Connect(cfg *xmpp.Config, router *xmpp.Router, onError func(error), setup func(*iq.Endpoint), opts ...iq.Option) (*Adapter, error) {
	if cfg == nil {
		panic("gosrciq: Connect: nil config")
	}
	if router == nil {
		router = xmpp.NewRouter()
	}
	a := &Adapter{ready: make(chan struct{})}
	var failed error // an error reported before the Endpoint exists
	var mu sync.Mutex
	router.NewRoute().Packet("iq").HandlerFunc(func(_ xmpp.Sender, p stanza.Packet) {
		<-a.ready
		if in := ToIQ(p); in != nil {
			a.Endpoint.Receive(context.Background(), in)
		}
	})
	c, err := xmpp.NewClient(cfg, router, func(err error) {
		mu.Lock()
		ep := a.Endpoint
		if ep == nil && failed == nil {
			failed = err
		}
		mu.Unlock()
		if ep != nil {
			ep.CloseWithError(err)
		}
		if onError != nil {
			onError(err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("gosrciq: %w", err)
	}
	if err := c.Connect(); err != nil {
		return nil, fmt.Errorf("gosrciq: connect: %w", err)
	}
	snd := NewSender(c)
	all := opts
	if c.Session != nil && c.Session.BindJid != "" {
		all = append([]iq.Option{iq.WithLocalJID(c.Session.BindJid)}, opts...)
	}
	ep := iq.NewEndpoint(snd, all...)
	if setup != nil {
		setup(ep)
	}
	mu.Lock()
	a.Endpoint, a.Sender, a.Client = ep, snd, c
	if failed != nil {
		ep.CloseWithError(failed)
	}
	mu.Unlock()
	close(a.ready)
	return a, nil
}

// LocalJID returns the address the server bound.
func (a *Adapter) LocalJID() string { return a.Client.Session.BindJid }

// Close closes the Endpoint with ErrDisconnected (pending requests fail
// with iq.ErrClosed) and disconnects the client.
func (a *Adapter) Close() error {
	a.Endpoint.CloseWithError(ErrDisconnected)
	a.Sender.mu.Lock()
	defer a.Sender.mu.Unlock()
	return a.Client.Disconnect()
}

// ToIQ rebuilds the <iq> gosrc.io/xmpp decoded into p, or returns nil if p
// is not one. A request whose rebuilt form does not parse comes back
// without its payload (so that it still gets its one reply, an error); a
// response that does not parse is dropped.
func ToIQ(p stanza.Packet) *iq.IQ {
	v, ok := p.(*stanza.IQ)
	if !ok || v == nil {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<iq xmlns='jabber:client' id='%s' type='%s'", esc(v.Id), esc(string(v.Type)))
	if v.From != "" {
		fmt.Fprintf(&b, " from='%s'", esc(v.From))
	}
	if v.To != "" {
		fmt.Fprintf(&b, " to='%s'", esc(v.To))
	}
	b.WriteString(">")
	var payload any
	if v.Payload != nil {
		payload = v.Payload
	} else if v.Any != nil {
		payload = v.Any
	}
	if payload != nil {
		if pb, err := xml.Marshal(payload); err == nil {
			b.Write(pb)
		}
	}
	if v.Error != nil {
		fmt.Fprintf(&b, "<error type='%s'>", esc(string(v.Error.Type)))
		if v.Error.Reason != "" {
			fmt.Fprintf(&b, "<%s xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>", v.Error.Reason)
		}
		if v.Error.Text != "" {
			fmt.Fprintf(&b, "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>%s</text>", esc(v.Error.Text))
		}
		b.WriteString("</error>")
	}
	b.WriteString("</iq>")
	// iq's own decoder, which reads what xml.Unmarshal into an IQ would.
	in, err := parseIQ(b.String())
	if err != nil {
		if v.Type == stanza.IQTypeGet || v.Type == stanza.IQTypeSet {
			return &iq.IQ{ID: v.Id, From: v.From, To: v.To, Type: iq.Type(v.Type)}
		}
		return nil
	}
	return in
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
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
