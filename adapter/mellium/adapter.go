// Package melliumiq plugs an iq.Endpoint into a logged-in mellium.im/xmpp
// client session: the Endpoint's Sender writes through the session, every
// <iq> the session receives reaches the Endpoint exactly once, the local JID
// is the bound one, and the end of the session closes the Endpoint with its
// cause, so that pending requests fail with iq.ErrClosed.
//
// It is the module github.com/xmpp-iq/iq/adapter/mellium, one of the
// repository's adapters, each a module of its own under adapter/ (named
// after the stack, with a package named after it plus "iq"), so that the
// core module depends on no client stack and a program pulls in only the
// stack it uses.
//
// # Two ways to read the session
//
// mellium's (*xmpp.Session).Serve writes a cancel/service-unavailable reply
// to every get or set whose handler has not written a reply before
// returning (the check is inside Serve, on the handler's TokenReadEncoder,
// and no public API turns it off). A Callee answers later, from a goroutine
// of its own, so no handler under mellium's Serve can hand a request to
// the Callee and return: the request would get mellium's reply first and
// the Callee's second. Hence:
//
//   - Adapter.Serve (the way to use this package) reads the session itself,
//     through (*xmpp.Session).TokenReader, in place of mellium's Serve. It
//     writes nothing of its own: every get or set gets exactly the one
//     reply its Callee sends; handlers run concurrently and may make
//     requests on the same session.
//   - Adapter.Handler, for programs that keep mellium's Serve (with a
//     mux.ServeMux for messages and presence, say, which it is given and
//     hands every element but <iq>), claims every IQ and answers each
//     request before returning, on Serve's goroutine: exactly one reply, but
//     one request at a time, and a handler that waits for a response on
//     the same session waits until its own deadline, since Serve reads
//     nothing until it returns.
//
// What stays out of reach through mellium's public API:
//
//   - Under Adapter.Serve, mellium's own request helpers ((*xmpp.Session)
//     SendIQ, EncodeIQ, UnmarshalIQ, IterIQ and their …Element forms, and
//     the packages built on them: roster, disco, ping, version, …) never
//     see their responses: only mellium's Serve routes a response to them,
//     through a table that is not exported. Their responses reach the
//     Endpoint's Caller, which drops them (logged at debug level), and the
//     helper waits until its context ends. Make requests with the
//     Endpoint's Caller instead (this repository's packages ping and
//     version have typed ones).
//   - Under Adapter.Serve, messages, presence and any other top-level
//     element are read and dropped: handlers for them (a mux.ServeMux's)
//     run only under mellium's Serve, through Adapter.Handler.
//   - Under mellium's Serve (Adapter.Handler), concurrent handlers, for the
//     reason above.
//   - An attribute whose local name is xmlns in a namespace of its own
//     (p:xmlns='…', well-formed but rare): mellium's stanza encoder drops
//     every attribute named xmlns on an element in a namespace, so it never
//     reaches the wire.
//
// One pitfall of mellium's own: it watches the context given to
// xmpp.DialClientSession, NewClientSession or NewSession from a goroutine
// that outlives the call, and when that context ends just after the call
// has returned, that goroutine may set a deadline in the past on the
// connection and fail its first read or write (i/o timeout), ending
// Serve at once. Give it a context that does not end soon after the
// login (context.Background(), or one cancelled only when the session is
// done); DialPlaintext takes care of it.
package melliumiq

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sync"
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
// server to answer our </stream:stream> with its own, and, once the server
// has ended its stream, for the replies still due.
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

// NewSender returns a Sender that writes on s. It panics if s is nil.
func NewSender(s *xmpp.Session) *Sender {
	if s == nil {
		panic("melliumiq: NewSender: nil session")
	}
	return &Sender{session: s, sem: make(chan struct{}, 1)}
}

// SendIQ implements iq.Sender. It hands the session in's tokens
// ((*iq.IQ).AppendTokens, no XML written and parsed again): an
// <iq> without xmlns, which the session writes in the stream's namespace
// (jabber:client on a client stream). On a client stream it writes no
// from, whatever in.From says (a Callee's reply carries the request's to):
// the server stamps the bound address on what a client sends, and a from
// it disagrees with could only get the stanza refused. in is not modified.
//
// It gives up, having written nothing, if ctx is done before the session
// is free; once writing has started, ctx (or WriteTimeout when ctx has no
// deadline) bounds it through the connection's write deadline. An IQ that
// does not encode fails with an error wrapping iq.ErrEncode, and nothing is
// written. SendIQ panics if in is nil.
func (s *Sender) SendIQ(ctx context.Context, in *iq.IQ) error {
	if in == nil {
		panic("melliumiq: Sender.SendIQ: nil IQ")
	}
	if in.From != "" && s.session.Out().XMLNS == stanza.NSClient {
		out := *in
		out.From = ""
		in = &out
	}
	toks, err := in.AppendTokens(nil)
	if err != nil {
		return fmt.Errorf("melliumiq: encode iq %s: %w", in.ID, err)
	}
	// mellium watches the context it is given from a goroutine that may
	// look at it after Send returns, and a Caller or Callee may reuse ctx
	// for another IQ once SendIQ has returned (see iq.Sender). Nor may
	// mellium's context end after Send returns: that goroutine, if it has
	// not yet seen the send end, would then cut short whatever write comes
	// next on the connection. So mellium gets a context of its own that
	// ends only while this send is under way, when ctx or the deadline
	// does, through a watcher that is gone before SendIQ returns.
	deadline, ok := ctx.Deadline()
	if !ok {
		d := s.WriteTimeout
		if d <= 0 {
			d = DefaultWriteTimeout
		}
		deadline = time.Now().Add(d)
	}
	wctx, stop := detach(ctx, deadline, ok)
	defer stop()
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case s.sem <- struct{}{}:
	case <-wctx.Done():
		return ctxErr(ctx, wctx)
	}
	defer func() { <-s.sem }()
	if err := ctxErr(ctx, wctx); err != nil {
		return err
	}
	// The tokens carry the payload's namespaces in their xml.Names; the
	// session's encoder puts the <iq> itself in the stream's namespace.
	if err := s.session.Send(wctx, &tokenSlice{toks: toks}); err != nil {
		if wctx.Err() != nil {
			return fmt.Errorf("melliumiq: send iq %s: %w (%w)", in.ID, ctxErr(ctx, wctx), err)
		}
		return fmt.Errorf("melliumiq: send iq %s: %w", in.ID, err)
	}
	return nil
}

// detach returns a context for mellium that ends when ctx does or at
// deadline, but only until stop is called, and stop, which returns once
// nothing looks at ctx any more. mellium watches a context from a
// goroutine that outlives the call it was given to; once that call has
// returned, the context must neither be touched (ctx may be reused) nor
// end (the goroutine, if it has not yet seen the call return, would set a
// deadline in the past on the connection and fail whatever read or write
// is under way). A zero deadline is none; ownDeadline says that deadline
// is ctx's own, which ends ctx itself.
func detach(ctx context.Context, deadline time.Time, ownDeadline bool) (context.Context, func()) {
	af, ok := ctx.(afterFuncer)
	if !ok {
		return detachWatched(ctx, deadline)
	}
	// The contexts a Caller and a Callee give their Sender run a function
	// when they end, with no goroutine to watch them: end is that
	// function, and the timer's when the deadline is not ctx's. A call of
	// end that comes after stop (a context that had ended already runs it
	// on a goroutine of its own) finds the send over and does nothing.
	wctx, cancel := context.WithCancelCause(context.Background())
	w := &watch{cancel: cancel, live: true}
	stopCtx := af.AfterFunc(w.canceled)
	var timer *time.Timer
	if !ownDeadline && !deadline.IsZero() {
		timer = time.AfterFunc(time.Until(deadline), w.expired)
	}
	return wctx, func() {
		stopCtx()
		if timer != nil {
			timer.Stop()
		}
		w.mu.Lock()
		w.live = false
		w.mu.Unlock()
	}
}

// afterFuncer is a context that runs a function once it ends, without a
// goroutine to watch it: context.AfterFunc looks for the same method, and
// the contexts iq's Caller and Callee pass their Sender have it.
type afterFuncer interface {
	AfterFunc(f func()) (stop func() bool)
}

// watch ends a detached context while its send is under way.
type watch struct {
	mu     sync.Mutex
	live   bool // the send is under way
	cancel context.CancelCauseFunc
}

func (w *watch) canceled() { w.end(context.Canceled) }
func (w *watch) expired()  { w.end(context.DeadlineExceeded) }

func (w *watch) end(cause error) {
	w.mu.Lock()
	if w.live {
		w.cancel(cause)
	}
	w.mu.Unlock()
}

// detachWatched is detach for any other context: a goroutine watches ctx
// and the deadline, and stop waits for it to end.
func detachWatched(ctx context.Context, deadline time.Time) (context.Context, func()) {
	wctx, cancel := context.WithCancelCause(context.Background())
	var timeout <-chan time.Time
	var timer *time.Timer
	if !deadline.IsZero() {
		timer = time.NewTimer(time.Until(deadline))
		timeout = timer.C
	}
	done := ctx.Done()
	quit, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-done:
			cancel(context.Canceled)
		case <-timeout:
			cancel(context.DeadlineExceeded)
		case <-quit:
		}
	}()
	return wctx, func() {
		close(quit)
		<-exited
		if timer != nil {
			timer.Stop()
		}
	}
}

// ctxErr is why a send gives up: ctx's error when it has ended, else
// wctx's cause (the deadline), else nil.
func ctxErr(ctx, wctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return context.Cause(wctx)
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

// New returns an Adapter for s, which must be ready: negotiated and, on a
// client stream, bound. Its Endpoint is configured by opts, after
// iq.WithLocalJID with the bound address (s.LocalAddr(), the full JID with
// the resource the server bound), so that the Caller accepts responses from
// the account's own server (no from, the bare JID or the domain) to
// requests sent to it; an iq.WithLocalJID among opts overrides it. Should
// the address change later ((*xmpp.Session).UpdateAddr), call
// Endpoint.Caller.SetLocalJID with the new one.
//
// New panics if s is nil or not ready (xmpp.Ready unset): a session that
// is still negotiating has no address of its own yet, and its input is not
// stanzas.
func New(s *xmpp.Session, opts ...iq.Option) *Adapter {
	if s == nil {
		panic("melliumiq: New: nil session")
	}
	if s.State()&xmpp.Ready == 0 {
		panic("melliumiq: New: session not ready (negotiate it, and bind a resource, first)")
	}
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
// presence) are read and dropped. Register the Callee's handlers before
// Serve starts.
//
// Serve returns nil when the server ends the stream (</stream:stream>),
// after failing the pending requests and sending, for at most two seconds,
// the replies still due to requests already read; the stream's error when
// it fails or carries a stream error (a mellium.im/xmpp/stream.Error); or
// context.Cause(ctx) when ctx is done, after closing the output stream and
// waiting as long for the server to close its own. Whichever way it ends,
// it closes the Endpoint with the cause (ErrStreamEnded for the server's
// </stream:stream>), so that pending and later requests fail with an error
// that wraps iq.ErrClosed and the cause, and closes the output stream
// (</stream:stream>). It does not close the network connection, s.Conn():
// as with mellium's own Serve, that is the caller's, after Serve returns.
//
// Serve holds the session's input stream for as long as it runs: do not
// call (*xmpp.Session).Serve, SendIQ or TokenReader meanwhile (see the
// package documentation for what that leaves out).
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
			a.finish(ctx)
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

// finish lets what is in flight end after the server's </stream:stream>
// (RFC 6120 §4.4): no response can follow, so the pending requests fail at
// once, and the replies due to requests already read are sent, for at most
// closeGrace, before Serve closes the output stream. The end of ctx cuts
// the wait short.
func (a *Adapter) finish(ctx context.Context) {
	a.Endpoint.Caller.CloseWithError(ErrStreamEnded)
	dctx, cancel := context.WithTimeout(ctx, closeGrace)
	defer cancel()
	_ = a.Endpoint.Callee.Drain(dctx)
}

// receive decodes the element that start opens, if it is an <iq>, and hands
// it to the Endpoint. r yields the rest of the element.
func (a *Adapter) receive(ctx context.Context, r xml.TokenReader, start *xml.StartElement) {
	in, ok := decodeIQ(r, start)
	if ok {
		a.Endpoint.Receive(ctx, in)
		return
	}
	if undecodable := requestHead(start); undecodable != nil {
		// A get or set whose content the IQ decoder refuses (XML that is
		// not namespace-well-formed) still gets its one reply: with no
		// payload, the Callee answers it bad-request. A response that
		// cannot be read is dropped, and its request times out.
		a.Endpoint.Receive(ctx, undecodable)
	}
}

// requestHead returns, for the start tag of a get or set in a stanza
// namespace, an IQ with its addressing and no payload, else nil.
func requestHead(start *xml.StartElement) *iq.IQ {
	if start.Name.Local != "iq" ||
		(start.Name.Space != "" && start.Name.Space != stanza.NSClient && start.Name.Space != stanza.NSServer) {
		return nil
	}
	var in iq.IQ
	for _, a := range start.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "id":
			in.ID = a.Value
		case "type":
			in.Type = iq.Type(a.Value)
		case "from":
			in.From = a.Value
		case "to":
			in.To = a.Value
		}
	}
	if !in.IsRequest() {
		return nil
	}
	return &in
}

// decodeIQ decodes an <iq> in the client or server namespace (or none) from
// r, which yields what follows start up to and including its end element.
// ok is false for any other element and for an <iq> that cannot be decoded.
func decodeIQ(r xml.TokenReader, start *xml.StartElement) (in *iq.IQ, ok bool) {
	if start.Name.Local != "iq" ||
		(start.Name.Space != "" && start.Name.Space != stanza.NSClient && start.Name.Space != stanza.NSServer) {
		return nil, false
	}
	// Straight from the session's tokens, which its decoder has already
	// put in their namespaces: no decoder of our own over them.
	in, err := iq.IQFromTokens(*start, r)
	if err != nil {
		return nil, false
	}
	return in, true
}

// Handler returns an xmpp.Handler for programs that keep mellium's own
// (*xmpp.Session).Serve instead of calling Adapter.Serve: it takes every
// <iq> and hands every other element to next (nil: ignores them), say a
// mux.ServeMux for messages and presence:
//
//	err := session.Serve(a.Handler(mux.New(stanza.NSClient, mux.MessageFunc(…))))
//
// (A mux.ServeMux cannot hand it the IQs itself: mux.Handle refuses the
// names of stanzas, and its IQ routes match one payload and type at a
// time.) It hands results and errors to the Endpoint's Caller (mellium's
// Serve keeps those that answer its own SendIQ), and answers gets and sets.
//
// mellium's Serve answers a get or set service-unavailable unless the
// handler has written a reply through its TokenReadEncoder before
// returning, so this handler cannot pass requests on and return at once as
// Adapter.Serve does: it runs the Callee's handler on Serve's goroutine
// (Callee.Reply) and writes the reply itself, without from on a client
// stream, so that each request still gets exactly one reply. Requests are
// thus answered one at a time, and a Callee handler must not wait for a
// response on the same session, which Serve cannot read until the handler
// returns. A handler's context is cancelled only when it returns: bound
// its work itself (iq.Timeout middleware).
func (a *Adapter) Handler(next xmpp.Handler) xmpp.Handler {
	return xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		if start.Name.Local != "iq" ||
			(start.Name.Space != "" && start.Name.Space != stanza.NSClient && start.Name.Space != stanza.NSServer) {
			if next == nil {
				return nil
			}
			return next.HandleXMPP(t, start)
		}
		in, ok := decodeIQ(t, start)
		if !ok {
			// As in Serve: an undecodable get or set gets bad-request.
			if in = requestHead(start); in == nil {
				return nil
			}
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
		if a.session.Out().XMLNS == stanza.NSClient {
			reply.From = ""
		}
		toks, err := reply.AppendTokens(nil)
		if err != nil {
			// As the Callee does for the replies it sends itself.
			reply = &iq.IQ{ID: in.ID, To: in.From, Type: iq.TypeError,
				Error: iq.NewError(iq.Cancel, iq.InternalServerError, "")}
			if toks, err = reply.AppendTokens(nil); err != nil {
				return nil // mellium sends its own service-unavailable
			}
		}
		_, err = xmlstream.Copy(t, &tokenSlice{toks: toks})
		return err
	})
}

// tokenSlice is an xml.TokenReader of toks, then io.EOF: an IQ's tokens
// (iq.IQ.AppendTokens) for the session to write, with no XML written and
// parsed again on the way.
type tokenSlice struct{ toks []xml.Token }

func (r *tokenSlice) Token() (xml.Token, error) {
	if len(r.toks) == 0 {
		return nil, io.EOF
	}
	t := r.toks[0]
	r.toks = r.toks[1:]
	return t, nil
}
