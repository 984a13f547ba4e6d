// Package melliumiq plugs an iq.Endpoint into a mellium.im/xmpp session.
//
// mellium negotiates the session (SASL, resource binding); this package
// carries IQs between it and an iq.Endpoint: a Sender that writes an *iq.IQ
// on the session, and a read loop (Adapter.Serve) that decodes every
// incoming <iq> and hands it to Endpoint.Receive, so that the Endpoint's
// Callee handlers run concurrently, each on a goroutine of its own.
//
// Why Serve does not run (*xmpp.Session).Serve: mellium's Serve writes a
// cancel/service-unavailable reply to every get or set whose handler has
// not written a reply through the handler's own TokenReadEncoder before
// returning. A Callee answers later, from another goroutine, so under
// mellium's Serve every request would get two replies, mellium's first.
// Adapter.Serve therefore reads the input stream itself, through
// (*xmpp.Session).TokenReader, as mellium's Serve does but without the
// automatic reply. For programs that must keep mellium's Serve (to combine
// this package with mux handlers for messages and presence, say),
// Adapter.Handler answers requests synchronously instead; see its doc.
//
// Responses: this package sends requests with (*xmpp.Session).Send, never
// with mellium's SendIQ, so mellium has no record of their ids and passes
// the result or error that answers each one on to the handler, hence to the
// Endpoint's Caller.
package melliumiq

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/xmpp-iq/iq"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/stanza"
)

// DefaultWriteTimeout bounds a write whose context has no deadline of its
// own, such as a Callee's reply (sent with context.WithoutCancel).
const DefaultWriteTimeout = 30 * time.Second

// closeGrace is how long Serve waits, once its context is done, for the
// server to answer our </stream:stream> with its own.
const closeGrace = 2 * time.Second

// ErrStreamEnded is the cause the Endpoint is closed with when the server
// ends the stream cleanly (</stream:stream>).
var ErrStreamEnded = errors.New("melliumiq: stream ended")

// Sender is an iq.Sender that writes IQs on a mellium session. It is safe for
// concurrent use: each IQ is written whole, under the session's output lock.
type Sender struct {
	session *xmpp.Session
	// sem serialises our own writers so that one waiting for its turn can
	// give up when its context is done; the session's lock cannot be
	// waited on with a context.
	sem chan struct{}
	// WriteTimeout bounds a write whose context has no deadline
	// (DefaultWriteTimeout when ≤ 0). Set it before the first SendIQ.
	WriteTimeout time.Duration
}

// NewSender returns a Sender that writes on s.
func NewSender(s *xmpp.Session) *Sender {
	return &Sender{session: s, sem: make(chan struct{}, 1)}
}

// SendIQ implements iq.Sender. It serialises in with (*iq.IQ).AppendXML, an
// <iq> without xmlns, which the session writes in the stream's namespace
// (jabber:client on a client stream). It gives up, having written nothing,
// if ctx is done before the session is free; once writing has started, ctx
// (or WriteTimeout when ctx has no deadline) bounds it through the
// connection's write deadline.
func (s *Sender) SendIQ(ctx context.Context, in *iq.IQ) error {
	if in == nil {
		return errors.New("melliumiq: nil IQ")
	}
	b, err := in.AppendXML(nil)
	if err != nil {
		return fmt.Errorf("melliumiq: encode iq %s: %w", in.ID, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		d := s.WriteTimeout
		if d <= 0 {
			d = DefaultWriteTimeout
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.sem }()
	if err := ctx.Err(); err != nil {
		return err
	}
	// The decoder resolves the payload's namespaces into xml.Names; the
	// session's encoder puts the <iq> itself in the stream's namespace.
	return s.session.Send(ctx, xml.NewDecoder(bytes.NewReader(b)))
}

// Adapter joins an iq.Endpoint to a mellium session: the Endpoint sends
// through the session, and Serve feeds it the IQs the session receives.
type Adapter struct {
	// Endpoint is the Caller and Callee on this session. Register Callee
	// handlers before Serve starts, or requests that arrive first are
	// answered feature-not-implemented.
	Endpoint *iq.Endpoint
	// Sender is what Endpoint sends through.
	Sender *Sender

	session *xmpp.Session
}

// New returns an Adapter for s, which must be ready (negotiated and, on a
// client stream, bound). Its Endpoint is configured by opts, after
// iq.WithLocalJID(s.LocalAddr()), so that responses from the local server
// (the account's bare JID, or its domain) are accepted; an
// iq.WithLocalJID among opts overrides it.
func New(s *xmpp.Session, opts ...iq.Option) *Adapter {
	snd := NewSender(s)
	all := opts
	if local := s.LocalAddr().String(); local != "" {
		all = append([]iq.Option{iq.WithLocalJID(local)}, opts...)
	}
	return &Adapter{
		Endpoint: iq.NewEndpoint(snd, all...),
		Sender:   snd,
		session:  s,
	}
}

// Session returns the session the Adapter was made for.
func (a *Adapter) Session() *xmpp.Session { return a.session }

// Serve reads the session's input stream until it ends, handing every <iq>
// to the Endpoint (Endpoint.Receive, which returns at once: the Callee runs
// handlers on goroutines of their own, with contexts derived from ctx). It
// writes nothing itself: no automatic reply, so each request gets exactly
// the one reply its Callee sends. Elements other than <iq> (messages,
// presence) are read and dropped.
//
// Serve returns when the server ends the stream (nil), when the stream
// fails or carries a stream error (that error), or when ctx is done
// (context.Cause(ctx)): it then closes the output stream and waits a
// moment for the server to close its own. Whichever way it ends, it closes
// the Endpoint with the cause, failing pending requests with an error that
// wraps iq.ErrClosed, and closes the output stream (</stream:stream>). It
// does not close the network connection, s.Conn(): as with mellium's own
// Serve, that is the caller's, after Serve returns.
//
// Serve holds the session's input stream for as long as it runs: do not
// call (*xmpp.Session).Serve, SendIQ or TokenReader meanwhile.
func (a *Adapter) Serve(ctx context.Context) (err error) {
	stop := context.AfterFunc(ctx, func() {
		// Deadline first: Close may wait for a writer that is stuck.
		_ = a.session.Conn().SetReadDeadline(time.Now().Add(closeGrace))
		_ = a.session.Close()
	})
	defer func() {
		stop()
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		cause := err
		if cause == nil {
			cause = ErrStreamEnded
		}
		a.Endpoint.CloseWithError(cause)
		if e := a.session.Close(); err == nil && e != nil && !errors.Is(e, xmpp.ErrOutputStreamClosed) {
			err = e
		}
	}()

	r := a.session.TokenReader()
	defer r.Close()
	for {
		tok, err := r.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.CharData:
			// whitespace keepalive: the session's reader refuses anything else
		case xml.StartElement:
			inner := xmlstream.InnerElement(r)
			a.receive(ctx, inner, &t)
			// Advance past the element, whatever was read of it.
			if _, err := xmlstream.Copy(xmlstream.Discard(), inner); err != nil {
				return err
			}
		default:
			return fmt.Errorf("melliumiq: stream in a bad state: unexpected %T", tok)
		}
	}
}

// receive decodes the element that start opens, if it is an <iq>, and hands
// it to the Endpoint. r yields the rest of the element.
func (a *Adapter) receive(ctx context.Context, r xml.TokenReader, start *xml.StartElement) {
	in, ok := decodeIQ(r, start)
	if ok {
		a.Endpoint.Receive(ctx, in)
	}
}

// decodeIQ decodes an <iq> in the client or server namespace (or none) from
// r, which yields what follows start up to and including its end element.
// ok is false for any other element and for an <iq> that cannot be decoded,
// which is dropped.
func decodeIQ(r xml.TokenReader, start *xml.StartElement) (in *iq.IQ, ok bool) {
	if start.Name.Local != "iq" ||
		(start.Name.Space != "" && start.Name.Space != stanza.NSClient && start.Name.Space != stanza.NSServer) {
		return nil, false
	}
	// Decode, not DecodeElement(in, start): encoding/xml panics when a
	// decoder that has read no start element of its own is asked to
	// DecodeElement into an xml.Unmarshaler, so the start goes first.
	in = new(iq.IQ)
	d := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r))
	if err := d.Decode(in); err != nil {
		return nil, false
	}
	return in, true
}

// Handler returns an xmpp.Handler for programs that keep mellium's own
// (*xmpp.Session).Serve, say behind a mux.ServeMux, instead of calling
// Adapter.Serve. It hands results and errors to the Endpoint's Caller.
//
// mellium's Serve answers a get or set service-unavailable unless the
// handler has written a reply through its TokenReadEncoder before
// returning, so this handler cannot pass requests on and return at once as
// Adapter.Serve does: it runs the Callee's handler on Serve's goroutine
// (Callee.Reply) and writes the reply itself, so that each request still
// gets exactly one reply. Requests are thus answered one at a time, and a
// Callee handler must not wait for a response on the same session, which
// Serve cannot read until the handler returns. A handler's context is
// cancelled only when it returns: bound its work itself.
//
// Elements other than <iq> are ignored, and left for mellium to answer.
func (a *Adapter) Handler() xmpp.Handler {
	return xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		in, ok := decodeIQ(t, start)
		if !ok {
			return nil
		}
		if !in.IsRequest() {
			a.Endpoint.Receive(context.Background(), in)
			return nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		reply := a.Endpoint.Callee.Reply(ctx, in)
		if reply == nil {
			return nil
		}
		b, err := reply.AppendXML(nil)
		if err != nil {
			// mellium sends its own service-unavailable instead.
			return nil
		}
		_, err = xmlstream.Copy(t, xml.NewDecoder(bytes.NewReader(b)))
		return err
	})
}
