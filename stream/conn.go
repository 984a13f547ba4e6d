// Package stream speaks an XMPP XML stream (RFC 6120 §4) over a transport
// that has finished negotiation, and connects it to an iq.Endpoint.
//
// A Conn has one reader, Serve, which decodes each top-level element with a
// single xml.Decoder: IQs go to the Endpoint, everything else to a fallback
// handler. Writes are serialized: a stanza is encoded whole into a buffer
// and goes into the stream whole, so two never interleave. A write that
// finds the transport idle is made at once; stanzas that queue up behind a
// write under way (at most DefaultWriteQueue of them; further senders
// wait for room) leave together in the next Write, and each sender still
// learns whether its own stanza was written: on return (SendIQ), or, for
// a sender that does not wait behind the write under way (SendIQAsync, as
// an iq.Caller's Request and an iq.Callee's handler replies use it),
// when the stanza has been written. Every stanza is
// bounded by a maximum size; a larger one, or XML that is not well-formed,
// ends the stream with the stream error RFC 6120 prescribes.
package stream

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/internal/xmldec"
)

// DefaultMaxStanzaSize is the default limit on one stanza's size, 1 MiB.
const DefaultMaxStanzaSize = 1 << 20

// DefaultCloseGrace is how long, by default, a Conn that reads the peer's
// </stream:stream> keeps the stream open for the replies still due to
// requests it had already read (see WithCloseGrace).
const DefaultCloseGrace = 2 * time.Second

// closeWriteWait bounds how long ending a stream waits to write its
// closing tag to a peer that does not read.
const closeWriteWait = time.Second

// Option configures a Conn.
type Option func(*config)

type config struct {
	maxSize int64
	ns      string
	logger  *slog.Logger
	local   localAddr
	grace   time.Duration

	keepalive   time.Duration
	readTimeout time.Duration
	pingTo      string
	pingToSet   bool

	neverCut bool // WithWritesNeverCut
}

// localAddr is the address a component's stream sends from.
type localAddr struct {
	addr   string // stamped on stanzas without a from; "" on a client stream
	domain string // the domainpart every from must have
}

// MaxStanzaSizeLimit is the largest size WithMaxStanzaSize takes: 1 GiB.
// The decoder counts the parts of the stanza it is reading in 32 bits,
// and a stanza anywhere near this size costs tens of times its size in
// memory while it is read and built.
const MaxStanzaSizeLimit = xmldec.MaxItemSize

// WithMaxStanzaSize sets the largest stanza the Conn reads, in bytes
// (DefaultMaxStanzaSize by default). A larger one ends the stream with a
// policy-violation stream error. Zero keeps the default;
// WithMaxStanzaSize panics if n is negative or over MaxStanzaSizeLimit,
// a programming error.
func WithMaxStanzaSize(n int) Option {
	if n < 0 {
		panic(fmt.Sprintf("stream: WithMaxStanzaSize: negative size %d", n))
	}
	if n > MaxStanzaSizeLimit {
		panic(fmt.Sprintf("stream: WithMaxStanzaSize: %d is over MaxStanzaSizeLimit (%d)", n, MaxStanzaSizeLimit))
	}
	return func(c *config) {
		if n > 0 {
			c.maxSize = int64(n)
		}
	}
}

// WithWritesNeverCut tells the Conn that its transport cannot go on
// after a Write cut short by a deadline: a layer that frames what it
// writes (a WebSocket or TLS implementation wrapped as a net.Conn, say)
// and does not say so with a NetConn method. The Conn then treats it as
// it treats a *tls.Conn: it never sets a write deadline on it, a sender
// whose context ends while its stanza is being written returns its
// context's error at once while the write goes on in the background (the
// stanza is written whole once the peer reads), and a stanza whose
// context ended before its write began is still never written. The cost
// is a goroutine per write while such a write may outlive its sender.
func WithWritesNeverCut() Option {
	return func(c *config) { c.neverCut = true }
}

// WithNamespace sets the stream's default namespace for New, which
// starts reading mid-stream: jabber:client unless told otherwise. ns is
// one of the stanza namespaces (iq.NSClient, iq.NSServer, iq.NSComponent)
// or empty, for a stream whose stanzas are in no namespace; WithNamespace
// panics on any other, in which no IQ would be read.
func WithNamespace(ns string) Option {
	switch ns {
	case "", iq.NSClient, iq.NSServer, iq.NSComponent:
	default:
		panic(fmt.Sprintf("stream: WithNamespace: %q is not a stanza namespace", ns))
	}
	return func(c *config) { c.ns = ns }
}

// WithLocalAddress gives the Conn an address of its own, as a component's
// stream has (XEP-0114): every stanza it writes for the user (an IQ through
// SendIQ, a Caller's request or a Callee's reply; a message, presence or
// iq through SendElement) that has no from is written with from set to
// addr, and one whose from is not in addr's domain (addr's domain itself,
// or any address at it) is refused, with an error wrapping iq.ErrInvalid,
// before anything is written: the server would end the stream for it
// (invalid-from), and a server that does not stamp a missing from ends it
// too (ejabberd: improper-addressing). The stanza given is never modified.
// SendRaw writes its bytes as they are.
//
// component.Connect sets it to the component's domain; give it again after
// Connect's other options to send from another address in that domain
// (bot@component.example, say). A client stream has no use for it: its
// server stamps the from of what the client sends, so by default nothing
// is stamped. WithLocalAddress panics if addr is not a well-formed JID.
func WithLocalAddress(addr string) Option {
	j, err := iq.ParseJID(addr)
	if err != nil {
		panic(fmt.Sprintf("stream: WithLocalAddress(%q): %v", addr, err))
	}
	return func(c *config) { c.local = localAddr{addr: j.String(), domain: j.Domainpart()} }
}

// WithCloseGrace sets how long the Conn, once it has read the peer's
// </stream:stream>, waits for the replies still due before it writes its
// own and closes (DefaultCloseGrace by default). RFC 6120 §4.4 lets the
// side that receives the closing tag finish what is in flight: the Conn
// stops reading, waits until no handler started for a request already
// read is running and each one's reply was written, or the grace ends,
// then closes the stream; handlers still running then see their context
// cancelled and their replies are dropped. Requests of our own still
// pending fail with iq.ErrClosed at once, as no reply can follow the
// peer's closing tag. 0 closes at once; a negative d panics.
func WithCloseGrace(d time.Duration) Option {
	if d < 0 {
		panic(fmt.Sprintf("stream: WithCloseGrace(%v): negative grace", d))
	}
	return func(c *config) { c.grace = d }
}

// WithLogger sets where the Conn reports stanzas nobody handles and
// failures it cannot return. By default, and with l nil, nothing is
// logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// Conn is an XMPP stream after negotiation. It implements iq.Sender. Its
// methods are safe for concurrent use, but only one Serve may run.
type Conn struct {
	rwc     io.ReadWriteCloser
	dec     *xmldec.Decoder
	encHint atomic.Int64      // size of the last stanza encoded, if big (encbuf.go)
	build   iq.ElementBuilder // reused for every stanza, by the one reader
	maxSize int64
	log     *slog.Logger
	header  Header
	local   localAddr
	grace   time.Duration

	// Liveness (keepalive.go): the times, on clock, of the last bytes
	// read and the last write, which one monitor goroutine checks, each
	// stamped once per window (see stamp).
	epoch       time.Time
	lastRead    stamp
	lastWrite   stamp
	stamped     chan struct{} // 1-buffered: a window opened, for the monitor
	monitored   atomic.Bool   // the monitor runs: transfers open windows
	keepalive   time.Duration
	readTimeout time.Duration
	pingTo      string
	pingToSet   bool

	// Graceful shutdown (shutdown.go): once shutdown is set, the reader
	// refuses gets and sets; receiving is set while it hands one to the
	// Endpoint, so that Shutdown knows when none can start a handler.
	shutdown  atomic.Bool
	receiving atomic.Bool
	readDone  chan struct{} // closed when Serve's reading has ended
	hardOnce  sync.Once     // closes the transport and done

	wsem chan struct{} // holds the write lock; a channel so waiting heeds ctx

	// Write coalescing (writeq.go): senders that find the lock held wait
	// in q, and the holder hands the lock to the head, which writes what
	// queued up in one Write. batch, acts and wbuf are the lock holder's.
	qmu    sync.Mutex
	q      []*wreq // FIFO from qhead; abandoned entries are skipped
	qhead  int
	qn     int           // stanzas queued (not abandoned)
	qmax   int           // bound on qn
	qpeak  int           // the most qn has been, for tests
	qspace chan struct{} // closed when qn drops below qmax, while senders wait
	wgen   uint64        // the last batch's number, under qmu
	told   *[]verdict    // verdicts of async stanzas, told once qmu is released (qunlock)
	// The stanzas writeAsync queued with a context that can end, and the
	// timer that ends them when it does (see sweep).
	async   []*wreq
	sweepT  *time.Timer
	sweepAt time.Time // when sweepT fires; zero while not armed
	sweepFn func()
	// busy, when above 0, says that stanzas queued up behind recent
	// writes: a sender that finds the lock free then yields once before
	// writing, so that the senders already runnable queue behind it and go
	// out in its Write. Each yield that finds nobody to join it lowers it
	// by one; a Write that carries more than one stanza, or a hand-off
	// of the lock that will, sets it to busyYields. (One stanza queued
	// behind another is no sign of load: on net.Pipe the next reply often
	// queues only because the last writer has yet to be scheduled again.)
	busy  atomic.Int32
	batch []*wreq
	acts  []int8
	wbuf  []byte

	// The write under way, for interrupt, made once in newConn: a context
	// with an AfterFunc method is watched through it at no cost per write.
	dmu         sync.Mutex
	wctx        context.Context // the context of the write under way
	curGen      uint64          // the batch under way, 0 for a stanza alone
	interrupted bool            // interrupt set a past write deadline
	interruptFn func()
	// noCut: a Write cut short by a deadline would break the transport
	// (cutIsFatal, WithWritesNeverCut), so none is: a sender whose context ends mid-write
	// returns while its write goes on in a goroutine of its own, which
	// runs writeDetachedFn (made once in newConn, so that starting it
	// allocates nothing) on the batch and bytes left in detached and
	// detachedBuf by the lock holder that starts it.
	noCut           bool
	writeDetachedFn func()
	detached        []*wreq
	detachedBuf     []byte

	closeOnce sync.Once
	closing   chan struct{} // closed when ending starts: no new writes
	// broken is closed when a write under the lock found the transport
	// broken: an end waiting for the lock to write the closing tag stops
	// waiting (nothing more can be written).
	broken     chan struct{}
	brokenOnce sync.Once
	done       chan struct{} // closed when the stream has ended
	cause      error         // why it ended; set before closing is closed

	serving bool // guarded by wsem's discipline: set once by Serve
	shared  bool // set with serving: ServeShared leaves the Endpoint open
	smu     sync.Mutex
}

// Header is the stream header of one side (RFC 6120 §4.7).
type Header struct {
	NS      string // default namespace, e.g. jabber:client
	To      string
	From    string
	ID      string
	Version string
	Lang    string
}

func newConfig(opts []Option) config {
	c := config{maxSize: DefaultMaxStanzaSize, ns: iq.NSClient, grace: DefaultCloseGrace,
		keepalive: DefaultKeepalive, readTimeout: DefaultReadTimeout}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// New returns a Conn over rwc, a stream whose headers have already been
// exchanged (by another library's negotiation, say): reading starts at
// the first stanza. Stanzas without an xmlns are read in the namespace set
// by WithNamespace.
func New(rwc io.ReadWriteCloser, opts ...Option) *Conn {
	cfg := newConfig(opts)
	prefix := `<stream:stream xmlns="` + escapeAttr(cfg.ns) + `" xmlns:stream="` + NSStream + `">`
	c := newConn(rwc, cfg)
	c.header = Header{NS: cfg.ns}
	// The synthetic header is read through a reader that goes on to the
	// transport's, then the transport's is read directly: anything the
	// first read of it gave stays in the decoder's buffer.
	r := c.dec.Reader()
	c.dec.SetReader(io.MultiReader(strings.NewReader(prefix), r))
	if it, err := c.dec.Next(nil); err != nil || it.Kind != xmldec.KindStart { // the synthetic header
		panic(fmt.Sprintf("stream: synthetic header: %v %v", it.Kind, err))
	}
	c.dec.SetReader(r)
	return c
}

func newConn(rwc io.ReadWriteCloser, cfg config) *Conn {
	c := &Conn{
		rwc:         rwc,
		maxSize:     cfg.maxSize,
		log:         cfg.logger,
		local:       cfg.local,
		grace:       cfg.grace,
		epoch:       time.Now(),
		keepalive:   cfg.keepalive,
		readTimeout: cfg.readTimeout,
		pingTo:      cfg.pingTo,
		pingToSet:   cfg.pingToSet,
		readDone:    make(chan struct{}),
		stamped:     make(chan struct{}, 1),
		wsem:        make(chan struct{}, 1),
		qmax:        DefaultWriteQueue,
		closing:     make(chan struct{}),
		broken:      make(chan struct{}),
		done:        make(chan struct{}),
	}
	var r io.Reader = rwc
	if cfg.readTimeout > 0 {
		r = activityReader{r: r, c: c}
	}
	c.dec = xmldec.NewDecoder(r, int(cfg.maxSize))
	c.interruptFn = c.interrupt
	c.noCut = cfg.neverCut || cutIsFatal(rwc)
	c.writeDetachedFn = c.writeDetached
	c.sweepFn = c.sweep
	return c
}

// cutIsFatal reports whether a Write on rwc that a past write deadline
// cuts short leaves rwc unable to write again, so that the Conn must never
// cut one short: a *tls.Conn (crypto/tls: "After a Write has timed out,
// the TLS state is corrupt and all future writes will return the same
// error"), and any transport that says it is a layer over another
// connection with a NetConn method, as crypto/tls and its forks do, and
// anything that embeds them: such a layer frames what it writes, and a
// frame cut short cannot be resumed. A net.Conn of another kind is taken
// at its interface's word: a Write that times out reports the bytes it
// wrote, and a connection whose deadline passed is refreshed by setting
// a later one, so the rest of a stanza can follow. A transport without
// write deadlines is never cut short anyway.
func cutIsFatal(rwc io.ReadWriteCloser) bool {
	if _, ok := rwc.(interface{ SetWriteDeadline(time.Time) error }); !ok {
		return false
	}
	switch rwc.(type) {
	case *tls.Conn, interface{ NetConn() net.Conn }:
		return true
	}
	return false
}

// Open starts a stream on rwc as its initiating entity: it writes our
// header (an XML declaration and <stream:stream> with the given
// attributes) and reads the peer's, then returns a Conn ready to exchange
// stanzas, with the peer's header available from PeerHeader. It is what
// component.Dial uses before the handshake. ctx bounds the exchange when
// rwc is a net.Conn.
func Open(ctx context.Context, rwc io.ReadWriteCloser, ours Header, opts ...Option) (*Conn, error) {
	cfg := newConfig(opts)
	if ours.NS != "" {
		cfg.ns = ours.NS
	}
	c := newConn(rwc, cfg)
	stop := NegotiationDeadline(ctx, rwc)
	defer stop()

	var b []byte
	b = append(b, `<?xml version='1.0'?><stream:stream xmlns="`...)
	b = append(b, escapeAttr(cfg.ns)...)
	b = append(b, `" xmlns:stream="`+NSStream+`"`...)
	for _, a := range [...]struct{ k, v string }{{"to", ours.To}, {"from", ours.From}, {"version", ours.Version}, {"xml:lang", ours.Lang}} {
		if a.v != "" {
			b = append(b, ' ')
			b = append(b, a.k...)
			b = append(b, `="`...)
			b = append(b, escapeAttr(a.v)...)
			b = append(b, '"')
		}
	}
	b = append(b, '>')
	if _, err := rwc.Write(b); err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("stream: our header: %w", err))
	}
	for {
		t, err := c.dec.Next(nil)
		if err != nil {
			// XML the stream must refuse gets its stream error here as in
			// Serve: our header is out, so the error and our closing tag
			// can follow it (RFC 6120 §4.9.1.1).
			return nil, ctxErr(ctx, peerHeaderError(c.failRead(err)))
		}
		switch t.Kind {
		case xmldec.KindProcInst, xmldec.KindText, xmldec.KindComment:
			continue
		case xmldec.KindStart:
			if t.Name.Space != NSStream || t.Name.Local != "stream" {
				return nil, fmt.Errorf("stream: peer sent <%s xmlns=%q>, not a stream header", t.Name.Local, t.Name.Space)
			}
			h := Header{}
			for _, a := range t.Attr {
				switch {
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					h.NS = a.Value
				case a.Name.Space == "" && a.Name.Local == "to":
					h.To = a.Value
				case a.Name.Space == "" && a.Name.Local == "from":
					h.From = a.Value
				case a.Name.Space == "" && a.Name.Local == "id":
					h.ID = a.Value
				case a.Name.Space == "" && a.Name.Local == "version":
					h.Version = a.Value
				case a.Name.Local == "lang":
					h.Lang = a.Value
				}
			}
			c.header = h
			return c, nil
		default:
			return nil, fmt.Errorf("stream: unexpected %v before the stream header", t.Kind)
		}
	}
}

// PeerHeader returns the stream header the peer sent (for New, only the
// namespace it was given).
func (c *Conn) PeerHeader() Header { return c.header }

// ReadElement reads the next top-level element, for negotiation steps
// before Serve (a component handshake, say). A <stream:error/> is returned
// as a *StreamError, the peer's </stream:stream> as io.EOF; XML the
// stream must refuse ends it with the stream error Serve would send. It
// must not be called once Serve runs.
func (c *Conn) ReadElement() (*iq.Element, error) {
	for {
		c.build.Reset()
		t, err := c.dec.Next(&c.build)
		if err != nil {
			return nil, c.failRead(err)
		}
		switch t.Kind {
		case xmldec.KindElement:
			el := c.build.Root()
			if t.Name.Space == NSStream && t.Name.Local == "error" {
				return nil, streamErrorFrom(el)
			}
			return el, nil
		case xmldec.KindEnd:
			return nil, io.EOF
		}
	}
}

// readError classifies a decoder error.
func (c *Conn) readError(err error) error {
	var syn *xml.SyntaxError
	switch {
	case errors.Is(err, ErrStanzaTooBig), errors.Is(err, xmldec.ErrTooBig):
		return ErrStanzaTooBig
	case errors.Is(err, ErrUnsupportedEncoding), errors.Is(err, ErrUnsupportedXMLVersion):
		return err // already classified
	case errors.Is(err, xmldec.ErrUnsupportedEncoding):
		return fmt.Errorf("%w: %v", ErrUnsupportedEncoding, err)
	case errors.Is(err, xmldec.ErrUnsupportedVersion):
		return fmt.Errorf("%w: %v", ErrUnsupportedXMLVersion, err)
	case errors.As(err, &syn):
		if syn.Msg == "unexpected EOF" {
			return io.ErrUnexpectedEOF
		}
		return fmt.Errorf("%w: line %d: %s", ErrNotWellFormed, syn.Line, syn.Msg)
	}
	return err
}

// Serve reads the stream until it ends, handing each <iq> to ep (results
// and errors to its Caller, gets and sets to its Callee, with ctx as the
// handlers' parent context) and every other top-level element to fallback,
// or to the logger when fallback is nil. IQ handlers never run on Serve's
// goroutine; fallback does, so it must not block (hand the element off to
// a goroutine or a queue of its own if it has work to do).
//
// When the stream ends, for whatever reason, Serve closes the Conn and
// closes ep with the cause, so that every pending request fails with
// iq.ErrClosed (ServeShared, for an Endpoint served by more than one
// stream, leaves it open). After the peer's </stream:stream>, the replies still due
// to requests already read are written first, within the grace that
// WithCloseGrace sets, and our closing tag after them. Serve returns nil
// after Close or the peer's orderly </stream:stream>; the peer's
// *StreamError; ErrStanzaTooBig, ErrNotWellFormed, ErrUnsupportedEncoding
// or ErrUnsupportedXMLVersion (after sending the matching stream error);
// io.ErrUnexpectedEOF or the transport's error; ctx's error when ctx ends.
func (c *Conn) Serve(ctx context.Context, ep *iq.Endpoint, fallback func(context.Context, *iq.Element)) error {
	return c.serveEndpoint(ctx, ep, fallback, false)
}

// ServeShared is Serve for an Endpoint that outlives this stream: one
// served by a stream after another as a component reconnects, or by
// several at once. When the stream ends it does not close ep: only the
// requests ep's Caller sent on this stream (through iq.SendVia, or
// directly when c is the Caller's Sender) fail, with an error wrapping
// iq.ErrConnectionLost, which wraps iq.ErrClosed; handlers, middleware
// and requests waiting for another stream stay, ready for the next one.
// Handlers still running when it ends keep running, their contexts
// uncancelled, and their replies go to ep's Callee's Sender as usual.
// It returns what Serve returns.
func (c *Conn) ServeShared(ctx context.Context, ep *iq.Endpoint, fallback func(context.Context, *iq.Element)) error {
	return c.serveEndpoint(ctx, ep, fallback, true)
}

func (c *Conn) serveEndpoint(ctx context.Context, ep *iq.Endpoint, fallback func(context.Context, *iq.Element), shared bool) error {
	c.smu.Lock()
	if c.serving {
		c.smu.Unlock()
		return errors.New("stream: Serve called twice")
	}
	c.serving = true
	c.shared = shared
	c.smu.Unlock()

	stop := context.AfterFunc(ctx, func() { c.end(ctx.Err(), nil); c.hardClose() })
	defer stop()
	stopMonitor := c.startMonitor(ctx, ep)
	err := c.serve(ctx, ep, fallback)
	close(c.readDone)
	c.end(err, nil)
	<-c.done
	stopMonitor()
	cause := c.cause
	if shared {
		ep.Caller.FailSentVia(c, cause)
	} else {
		ep.CloseWithError(cause)
	}
	if errors.Is(cause, ErrClosed) || errors.Is(cause, io.EOF) {
		return nil
	}
	return cause
}

func (c *Conn) serve(ctx context.Context, ep *iq.Endpoint, fallback func(context.Context, *iq.Element)) error {
	c.build.SetTreeReuse(ep.TreeReuse())
	for {
		c.build.Reset()
		t, err := c.dec.Next(&c.build)
		if err != nil {
			return c.failRead(err)
		}
		switch t.Kind {
		case xmldec.KindElement:
			if t.Name.Local == "iq" && isStanzaNS(t.Name.Space) {
				in, err := c.build.RootIQ()
				if err != nil { // cannot happen: the name was just checked
					return c.failRead(err)
				}
				c.receive(ctx, ep, in)
				continue
			}
			el := c.build.Root()
			if t.Name.Space == NSStream && t.Name.Local == "error" {
				return streamErrorFrom(el)
			}
			if fallback != nil {
				fallback(ctx, el)
			} else {
				c.log.Warn("stream: unhandled stanza", "name", t.Name.Local, "ns", t.Name.Space,
					"from", el.AttrValue("from"), "id", el.AttrValue("id"))
			}
		case xmldec.KindEnd: // the peer's </stream:stream>
			if err := c.finish(ctx, ep); err != nil {
				return err
			}
			return io.EOF
		case xmldec.KindText:
			// whitespace keepalives
		case xmldec.KindComment, xmldec.KindProcInst, xmldec.KindDirective:
			return c.fail(&StreamError{Condition: RestrictedXML}, fmt.Errorf("stream: peer sent restricted XML (%v)", t.Kind))
		default:
			return c.fail(&StreamError{Condition: NotWellFormed}, fmt.Errorf("%w: unexpected %v", ErrNotWellFormed, t.Kind))
		}
	}
}

// isStanza reports whether name is one of the three stanzas of RFC 6120
// §8, the elements a server checks the from of.
func isStanza(name xml.Name) bool {
	switch name.Local {
	case "message", "presence", "iq":
		return isStanzaNS(name.Space)
	}
	return false
}

// finish lets what is in flight end after the peer's closing tag (RFC
// 6120 §4.4): nothing more is read, our pending requests fail (under
// ServeShared, those sent on this stream), as no reply can follow, and
// the replies due to requests already read are written,
// for at most the grace, before the caller ends the stream. Close or the
// end of ctx cut the wait short; finish returns ctx's error if it ended,
// so that it, not the peer's closing tag, is the cause.
func (c *Conn) finish(ctx context.Context, ep *iq.Endpoint) error {
	if c.shared {
		ep.Caller.FailSentVia(c, io.EOF)
	} else {
		ep.Caller.CloseWithError(io.EOF)
	}
	if c.grace == 0 {
		return nil
	}
	gctx, cancel := context.WithTimeout(ctx, c.grace)
	defer cancel()
	go func() {
		select {
		case <-c.closing:
			cancel()
		case <-gctx.Done():
		}
	}()
	if err := ep.Callee.Drain(gctx); err != nil && ctx.Err() == nil && !c.isClosing() {
		c.log.Warn("stream: handlers still running when the close grace ended", "grace", c.grace, "in_flight", ep.Callee.InFlight())
	}
	return ctx.Err()
}

func (c *Conn) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

func isStanzaNS(space string) bool {
	return space == "" || space == iq.NSClient || space == iq.NSServer || space == iq.NSComponent
}

// failRead ends the stream after a read error, with the stream error it
// calls for (RFC 6120 §4.9.3):
//   - XML that is not well-formed, or not namespace-well-formed (an
//     undeclared prefix, an attribute given twice): not-well-formed
//     (§4.9.3.13, which names both XML and Namespaces in XML, and §11.3);
//   - an XML declaration of an encoding other than UTF-8:
//     unsupported-encoding (§4.9.3.22, §11.6);
//   - an XML declaration of a version other than 1.0: bad-format
//     (§4.9.3.1, "XML that cannot be processed"). The RFC names no
//     condition for the XML version: unsupported-version (§4.9.3.25) is
//     about the stream header's version attribute, the version of XMPP.
//
// Other errors (the transport's, an unexpected end) end the stream
// without a stream error: there is no one left to read it.
func (c *Conn) failRead(err error) error {
	err = c.readError(err)
	switch {
	case errors.Is(err, ErrStanzaTooBig):
		return c.fail(&StreamError{Condition: PolicyViolation, Text: "stanza too big"}, err)
	case errors.Is(err, ErrNotWellFormed):
		return c.fail(&StreamError{Condition: NotWellFormed}, err)
	case errors.Is(err, ErrUnsupportedEncoding):
		return c.fail(&StreamError{Condition: UnsupportedEncoding, Text: "only UTF-8 is supported"}, err)
	case errors.Is(err, ErrUnsupportedXMLVersion):
		return c.fail(&StreamError{Condition: BadFormat, Text: "only XML 1.0 is supported"}, err)
	}
	return err
}

// fail ends the stream with a stream error to the peer and returns err.
func (c *Conn) fail(se *StreamError, err error) error {
	c.end(err, se)
	return err
}

// end ends the stream once: it writes se, if any, and the closing tag,
// then closes the transport, which ends any read or write under way.
func (c *Conn) end(cause error, se *StreamError) { c.endStream(cause, se, false) }

// endStream is end; haveLock says the caller holds the write lock, after a
// write that broke the stream, so nothing more can be written.
func (c *Conn) endStream(cause error, se *StreamError, haveLock bool) {
	c.closeOnce.Do(func() {
		if cause == nil {
			cause = ErrClosed
		}
		c.cause = cause
		close(c.closing)
		c.failQueue()
		if haveLock {
			c.hardClose()
			return
		}
		var b []byte
		if se != nil {
			b = appendStreamError(b, se)
		}
		b = append(b, "</stream:stream>"...)
		// The closing bytes wait for a write under way to finish, so that
		// the stream error RFC 6120 requires is not lost; but a writer
		// stuck on a peer that does not read must not hold the end up, so
		// all of it gets closeWriteWait, after which closing the transport
		// ends whatever write is still blocked.
		t := time.NewTimer(closeWriteWait)
		defer t.Stop()
		select {
		case c.wsem <- struct{}{}:
			wrote := make(chan struct{})
			go func() {
				defer close(wrote)
				_, _ = c.rwc.Write(b)
			}()
			select {
			case <-wrote:
			case <-t.C:
			}
			_ = c.rwc.Close()
			<-wrote
			<-c.wsem
		case <-c.broken:
			// The writer holding the lock found the transport broken
			// and waits for this end to finish (breakStream).
		case <-t.C:
		}
		c.hardClose()
	})
}

// breakStream ends the stream after a write made under the write lock
// found the transport broken. An end already under way in another
// goroutine (the reader's, which found the same transport gone) may be
// waiting for the lock to write the closing tag: broken stops that wait at
// once, instead of after closeWriteWait, so that pending requests fail
// promptly.
func (c *Conn) breakStream(err error) {
	c.brokenOnce.Do(func() { close(c.broken) })
	c.endStream(err, nil, true)
}

// hardClose closes the transport, which ends any read or write under
// way, and marks the stream ended. It is idempotent.
func (c *Conn) hardClose() {
	c.hardOnce.Do(func() {
		_ = c.rwc.Close()
		close(c.done)
	})
}

// Close ends the stream: it writes </stream:stream>, closes the transport,
// and makes Serve return nil. During a Shutdown it closes the transport
// at once. It is idempotent.
func (c *Conn) Close() error {
	c.end(ErrClosed, nil)
	c.hardClose()
	return nil
}

// Done is closed when the stream has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the stream ended, or nil while it is open.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.cause
	default:
		return nil
	}
}

// SendIQ implements iq.Sender: it encodes i whole and writes it after any
// write under way, alone when the transport is idle, or in one Write with
// the other stanzas that queued up behind that write. (On a stream busy
// lately, a sender that finds the transport idle first yields the
// processor once, so that the senders already woken queue behind it and
// leave in its Write.) It returns nil once
// its stanza is written whole. It gives up when ctx ends before the write
// starts, and nothing of the stanza is written; a sender that finds the
// queue full (DefaultWriteQueue stanzas) waits for room, or for ctx. When
// ctx ends midway, SendIQ returns ctx's error at once but the rest of the
// stanza is still written, in the background: a stanza cut short would
// break the stream for everyone else (other stanzas of the same Write not
// yet begun are written after it). When the transport fails, or the Conn
// is closed before its stanza's write began, SendIQ returns an error
// wrapping ErrClosed. ctx bounds
// the write on a transport with write deadlines (a net.Conn): a Caller's
// request deadline and a Callee's reply timeout end a write to a peer that
// stopped reading. On a *tls.Conn (or another transport layered over a
// connection, which says so with a NetConn method), a Write cut short by
// a deadline would corrupt the TLS state and so end the stream for every
// request: there ctx bounds SendIQ's wait but never cuts the write, which
// goes on in the background, and a stanza whose write began while ctx was
// alive is written whole once the peer reads (one whose ctx ended before
// its write began is still never written). An IQ that does not encode fails with an error wrapping
// iq.ErrEncode, and nothing is written. On a stream with an address of its
// own (WithLocalAddress), an IQ without from is written with that address,
// and one from outside its domain is refused.
func (c *Conn) SendIQ(ctx context.Context, i *iq.IQ) error {
	_, err := c.sendIQ(ctx, i, nil)
	return err
}

// SendIQAsync implements iq.AsyncSender: it is SendIQ for a sender that
// does not wait behind a write under way. When the transport is idle, or
// the IQ is refused (it does not encode, its from is not ours, ctx has
// ended, the stream is closed), it returns SendIQ's verdict with queued
// false. Otherwise it queues the stanza and returns queued true at once,
// and n is told the verdict SendIQ would have returned, exactly once, by
// the goroutine that settles it (perhaps before SendIQAsync has
// returned): once written, or refused when the stream closes, or when ctx
// ends first, at its deadline or within 100 ms of its cancellation (the
// Conn looks over its queue for cancelled contexts at that pace). Then
// the stanza is never written if the Write that carries it had not begun,
// and a Write it is part of is cut short where the transport allows, its
// rest finished as SendIQ's is; where the transport cannot cut a Write
// (TLS, WithWritesNeverCut), the stanza may still be written whole after
// n was told it was not.
// A stream busy lately may make SendIQAsync write at once anyway, in one
// Write with the stanzas queued behind it, as SendIQ does.
func (c *Conn) SendIQAsync(ctx context.Context, i *iq.IQ, n iq.Notifier) (queued bool, err error) {
	return c.sendIQ(ctx, i, n)
}

// sendIQ is SendIQ, and with n set SendIQAsync.
func (c *Conn) sendIQ(ctx context.Context, i *iq.IQ, n iq.Notifier) (bool, error) {
	if c.local.addr != "" {
		if i.From == "" {
			// A copy on the stack carries the from: the caller's IQ is
			// not ours to modify, and the hot path allocates nothing.
			stamped := *i
			stamped.From = c.local.addr
			return c.encodeAndWrite(ctx, &stamped, n)
		}
		if err := c.checkFrom(i.From); err != nil {
			return false, err
		}
	}
	return c.encodeAndWrite(ctx, i, n)
}

// checkFrom refuses a from outside the stream's domain.
func (c *Conn) checkFrom(from string) error {
	if from == c.local.addr {
		return nil
	}
	if j, err := iq.ParseJID(from); err != nil || j.Domainpart() != c.local.domain {
		return fmt.Errorf("stream: from %q is not an address in %s: %w", from, c.local.domain, iq.ErrInvalid)
	}
	return nil
}

// encodeAndWrite encodes i whole and writes it (write), or, with n set,
// writes or queues it (writeAsync): a queued stanza's buffer is the
// queue's to put back.
func (c *Conn) encodeAndWrite(ctx context.Context, i *iq.IQ, n iq.Notifier) (queued bool, err error) {
	bp := c.encodeBuf()
	b, err := i.AppendXML((*bp)[:0])
	if err == nil {
		bp, b = c.encoded(bp, b)
		if n == nil {
			err = c.write(ctx, b)
		} else {
			queued, err = c.writeAsync(ctx, b, bp, n)
		}
	}
	if !queued {
		putBuf(bp, b)
	}
	return queued, err
}

// SendElement writes any top-level element (a message, a presence, a
// handshake), as SendIQ does. A stanza (message, presence or iq) is
// addressed as SendIQ's IQ on a stream with an address of its own; other
// elements are written as they are.
func (c *Conn) SendElement(ctx context.Context, el *iq.Element) error {
	if c.local.addr != "" && isStanza(el.Name) {
		from, i := "", -1
		for k, a := range el.Attr {
			if a.Name.Space == "" && a.Name.Local == "from" {
				from, i = a.Value, k
				break
			}
		}
		if from != "" {
			if err := c.checkFrom(from); err != nil {
				return err
			}
		} else {
			// A shallow copy with its own attributes carries the from.
			stamped := *el
			stamped.Attr = make([]xml.Attr, 0, len(el.Attr)+1)
			for k, a := range el.Attr {
				if k != i {
					stamped.Attr = append(stamped.Attr, a)
				}
			}
			stamped.Attr = append(stamped.Attr, xml.Attr{Name: xml.Name{Local: "from"}, Value: c.local.addr})
			el = &stamped
		}
	}
	bp := c.encodeBuf()
	b, err := el.AppendXML((*bp)[:0])
	if err != nil {
		err = fmt.Errorf("stream: encode <%s>: %w", el.Name.Local, err)
	} else {
		bp, b = c.encoded(bp, b)
		err = c.write(ctx, b)
	}
	putBuf(bp, b)
	return err
}

// SendRaw writes b, which must be one or more complete, well-formed
// elements, as SendIQ does.
func (c *Conn) SendRaw(ctx context.Context, b []byte) error {
	return c.write(ctx, b)
}

// afterFuncer is a context that runs a function when it ends, without a
// goroutine or a timer of the caller's: the contexts an iq.Caller and an
// iq.Callee pass to SendIQ are, with their deadline enforced by their own
// ending. (context.AfterFunc looks for the same method.)
type afterFuncer interface {
	AfterFunc(f func()) (stop func() bool)
}

// watchedWrite writes b with ctx's end interrupting the write, when the
// transport has write deadlines and survives a write cut short (see
// cutIsFatal). gen, when not 0, names the batch being written, which
// interruptGen may cut short for another of its stanzas.
func (c *Conn) watchedWrite(ctx context.Context, b []byte, gen uint64) (int, error) {
	nc, ok := c.rwc.(interface{ SetWriteDeadline(time.Time) error })
	if !ok || c.noCut {
		return c.rwc.Write(b)
	}
	af, cheap := ctx.(afterFuncer)
	if !cheap {
		if gen != 0 {
			c.dmu.Lock()
			c.curGen = gen
			c.dmu.Unlock()
		}
		stop := deadlineFromContext(ctx, c.rwc)
		if gen != 0 {
			c.dmu.Lock()
			if c.interrupted {
				// Cut before it began (see lead): ctx's deadline, set
				// just now, must not lift that.
				_ = nc.SetWriteDeadline(time.Unix(1, 0))
			}
			c.dmu.Unlock()
		}
		n, err := c.rwc.Write(b)
		stop()
		if gen != 0 {
			c.dmu.Lock()
			c.curGen = 0
			if c.interrupted {
				c.interrupted = false
				_ = nc.SetWriteDeadline(time.Time{})
			}
			c.dmu.Unlock()
		}
		return n, err
	}
	c.dmu.Lock()
	c.wctx = ctx
	c.curGen = gen
	c.dmu.Unlock()
	stop := af.AfterFunc(c.interruptFn)
	n, err := c.rwc.Write(b)
	stop()
	c.dmu.Lock()
	c.wctx = nil
	c.curGen = 0
	if c.interrupted {
		c.interrupted = false
		_ = nc.SetWriteDeadline(time.Time{})
	}
	c.dmu.Unlock()
	return n, err
}

// interrupt ends the write under way, by a past write deadline, if its
// context is done. It may run late, for a write already over: it then
// finds no write, or one whose context is not done, and does nothing.
func (c *Conn) interrupt() {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.wctx == nil || c.wctx.Err() == nil {
		return
	}
	if nc, ok := c.rwc.(interface{ SetWriteDeadline(time.Time) error }); ok {
		_ = nc.SetWriteDeadline(time.Unix(1, 0))
		c.interrupted = true
	}
}

func (c *Conn) closedErr() error {
	return closedBy(c.cause)
}

// deadlineFromContext applies ctx's deadline, and its cancellation, to
// rwc's writes and reads when rwc is a net.Conn. It returns the function
// that lifts them.
func deadlineFromContext(ctx context.Context, rwc io.ReadWriteCloser) func() {
	nc, ok := rwc.(interface{ SetWriteDeadline(time.Time) error })
	if !ok || ctx.Done() == nil {
		return func() {}
	}
	if d, ok := ctx.Deadline(); ok {
		_ = nc.SetWriteDeadline(d)
	}
	// When ctx ends mid-write the callback sets a past deadline; stop
	// waits for it to be done, then lifts every deadline, so that none
	// outlives this write.
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = nc.SetWriteDeadline(time.Unix(1, 0))
	})
	return func() {
		if !stop() {
			<-fired
		}
		_ = nc.SetWriteDeadline(time.Time{})
	}
}

// NegotiationDeadline applies ctx's deadline, and its cancellation, to
// both reads and writes of rwc when rwc has deadlines (a net.Conn does),
// for the steps of a negotiation. It returns the function that lifts them.
func NegotiationDeadline(ctx context.Context, rwc io.ReadWriteCloser) func() {
	nc, ok := rwc.(interface{ SetDeadline(time.Time) error })
	if !ok || ctx.Done() == nil {
		return func() {}
	}
	if d, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(d)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		_ = nc.SetDeadline(time.Unix(1, 0))
	})
	return func() {
		if !stop() {
			<-fired
		}
		_ = nc.SetDeadline(time.Time{})
	}
}

// ctxErr names the context as the cause of a transport timeout that its
// deadline set. The transport's timer may fire a moment before the
// context's, so a passed deadline counts even while ctx.Err is still nil.
func ctxErr(ctx context.Context, err error) error {
	if !isTimeout(err) {
		return err
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
	}
	return err
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func escapeAttr(s string) string {
	var sb strings.Builder
	_ = xml.EscapeText(&sb, []byte(s))
	return sb.String()
}
