package stream_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// waitLong bounds every wait for something that should happen at once: it
// is generous so that a loaded machine does not fail the tests, and only a
// hang reaches it.
const waitLong = 5 * time.Second

// hNS is the namespace of the test handlers the harness registers.
const hNS = "urn:test:stream"

// leakCheck registers a goroutine-leak check that runs after every other
// cleanup of the test (cleanups run last-in, first-out).
func leakCheck(t *testing.T) {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

// wire reads what a Conn writes on the far end of its transport, keeps the
// raw bytes and decodes them as the inside of a stream: each top-level
// element is delivered on elems, and the closing </stream:stream> closes
// endTag. It reads until the transport ends, even past bad XML, so that the
// Conn never blocks on a write.
type wire struct {
	mu     sync.Mutex
	raw    bytes.Buffer
	decErr error

	elems  chan *iq.Element
	endTag chan struct{}
	eof    chan struct{} // closed when the transport ended
}

type wireTee struct{ w *wire }

func (t wireTee) Write(p []byte) (int, error) {
	t.w.mu.Lock()
	defer t.w.mu.Unlock()
	return t.w.raw.Write(p)
}

// newWire starts reading r, decoding it in the default namespace ns.
func newWire(r io.Reader, ns string) *wire {
	w := &wire{elems: make(chan *iq.Element, 4096), endTag: make(chan struct{}), eof: make(chan struct{})}
	go w.run(r, ns)
	return w
}

func (w *wire) run(r io.Reader, ns string) {
	defer close(w.eof)
	tr := io.TeeReader(r, wireTee{w})
	prefix := `<stream:stream xmlns="` + ns + `" xmlns:stream="` + stream.NSStream + `">`
	dec := xml.NewDecoder(io.MultiReader(strings.NewReader(prefix), tr))
	if _, err := dec.Token(); err != nil {
		panic(err)
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			w.mu.Lock()
			w.decErr = err
			w.mu.Unlock()
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			el := new(iq.Element)
			if err := dec.DecodeElement(el, &t); err != nil {
				w.mu.Lock()
				w.decErr = err
				w.mu.Unlock()
				_, _ = io.Copy(io.Discard, tr)
				return
			}
			w.elems <- el
		case xml.EndElement:
			close(w.endTag)
			_, _ = io.Copy(io.Discard, tr)
			return
		}
	}
	_, _ = io.Copy(io.Discard, tr)
}

// tail returns the last bytes read, for failure messages.
func (w *wire) tail() string {
	s := w.Raw()
	if len(s) > 300 {
		s = "…" + s[len(s)-300:]
	}
	return s
}

// Raw returns what has been read so far.
func (w *wire) Raw() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.raw.String()
}

// next returns the next element the Conn wrote, failing the test if none
// comes in time.
func (w *wire) next(t *testing.T) *iq.Element {
	t.Helper()
	select {
	case el := <-w.elems:
		return el
	case <-w.eof:
		select {
		case el := <-w.elems:
			return el
		default:
		}
		t.Fatalf("transport ended before the next element (decoder: %v); read %q", w.decodeErr(), w.tail())
	case <-time.After(waitLong):
		t.Fatalf("no element within %v; read %q", waitLong, w.tail())
	}
	return nil
}

// nextIQ returns the next element, which must be an <iq>, as an IQ.
func (w *wire) nextIQ(t *testing.T) *iq.IQ {
	t.Helper()
	el := w.next(t)
	require.Equal(t, "iq", el.Name.Local, "want an <iq>, got %s", el)
	b, err := el.AppendXML(nil)
	require.NoError(t, err)
	out := new(iq.IQ)
	require.NoError(t, xml.Unmarshal(b, out))
	return out
}

// waitEOF waits for the transport to end and returns everything read.
func (w *wire) waitEOF(t *testing.T) string {
	t.Helper()
	select {
	case <-w.eof:
	case <-time.After(waitLong):
		t.Fatalf("transport not closed within %v; read %q", waitLong, w.tail())
	}
	return w.Raw()
}

// decodeErr returns why decoding stopped, if it did.
func (w *wire) decodeErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.decErr
}

// sawEndTag reports whether </stream:stream> was read.
func (w *wire) sawEndTag() bool {
	select {
	case <-w.endTag:
		return true
	default:
		return false
	}
}

// rig is a served Conn on one end of a net.Pipe and the raw other end, a
// test peer that writes by hand and reads through a wire.
type rig struct {
	conn *stream.Conn
	ep   *iq.Endpoint
	peer net.Conn
	wire *wire
	errc chan error // Serve's result
	fb   chan *iq.Element
}

type rigOpts struct {
	ctx      context.Context
	ns       string // the wire's namespace; jabber:client when empty
	noFB     bool   // serve with a nil fallback
	opts     []stream.Option
	epOpts   []iq.Option
	register func(ep *iq.Endpoint)
}

// newRig serves a Conn made by stream.New and registers an echo handler
// ({hNS}echo, get: answers its text) and a hold handler ({hNS}hold: waits
// for its context, reporting on held). Its cleanup closes everything and
// waits for Serve.
func newRig(t *testing.T, o rigOpts) *rig {
	t.Helper()
	if o.ctx == nil {
		o.ctx = context.Background()
	}
	if o.ns == "" {
		o.ns = iq.NSClient
	}
	p1, p2 := net.Pipe()
	r := &rig{peer: p2, errc: make(chan error, 1), fb: make(chan *iq.Element, 4096)}
	r.conn = stream.New(p1, o.opts...)
	r.ep = iq.NewEndpoint(r.conn, o.epOpts...)
	r.ep.Callee.Get(hNS, "echo", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		return iq.NewElement(hNS, "echo").AppendText(req.Payload.Text()), nil
	})
	if o.register != nil {
		o.register(r.ep)
	}
	r.wire = newWire(p2, o.ns)
	var fb func(context.Context, *iq.Element)
	if !o.noFB {
		fb = func(_ context.Context, el *iq.Element) { r.fb <- el }
	}
	go func() { r.errc <- r.conn.Serve(o.ctx, r.ep, fb) }()
	t.Cleanup(func() {
		_ = r.conn.Close()
		_ = r.peer.Close()
		select {
		case <-r.errc:
		case <-time.After(waitLong):
			t.Errorf("Serve did not return within %v of Close", waitLong)
		}
		select {
		case <-r.wire.eof:
		case <-time.After(waitLong):
			t.Errorf("wire reader did not end")
		}
		_ = r.ep.Close()
	})
	return r
}

// send writes s from the peer, failing the test if the Conn does not read
// it in time.
func (r *rig) send(t *testing.T, s string) {
	t.Helper()
	// (SetWriteDeadline fails once either end is closed: the Conn may
	// close as soon as it has read s.)
	_ = r.peer.SetWriteDeadline(time.Now().Add(waitLong))
	_, err := io.WriteString(r.peer, s)
	require.NoError(t, err)
	_ = r.peer.SetWriteDeadline(time.Time{})
}

// quiesce returns once no write of the Conn is under way: it writes a
// whitespace keepalive, which needs the write lock and releases it before
// returning. (The Conn skips its closing bytes when a write holds the lock,
// see TestEnd_StreamErrorNotDroppedWhileAWriteHoldsTheLock.)
func (r *rig) quiesce(t *testing.T) {
	t.Helper()
	require.NoError(t, r.conn.SendRaw(context.Background(), []byte(" ")))
}

// sendAsync writes s from the peer without waiting; the write ends, at
// the latest, when the transport closes.
func (r *rig) sendAsync(s string) {
	go func() { _, _ = io.WriteString(r.peer, s) }()
}

// served waits for Serve's result.
func (r *rig) served(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.errc:
		r.errc <- err // keep it for the cleanup
		return err
	case <-time.After(waitLong):
		t.Fatalf("Serve did not return within %v", waitLong)
	}
	return nil
}

// goRequest starts a get with payload from our side and returns where its
// error arrives.
func goRequest(ep *iq.Endpoint, id string, payload *iq.Element) chan error {
	errc := make(chan error, 1)
	go func() {
		_, err := ep.Caller.Request(context.Background(), &iq.IQ{ID: id, Type: iq.TypeGet, Payload: payload})
		errc <- err
	}()
	return errc
}

// recvErr waits for an error from errc within d.
func recvErr(t *testing.T, errc chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(d):
		t.Fatalf("no result within %v", d)
	}
	return nil
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// isStreamErr reports whether el is a <stream:error/> with cond.
func isStreamErr(el *iq.Element, cond stream.Condition) bool {
	if el == nil || el.Name.Space != stream.NSStream || el.Name.Local != "error" {
		return false
	}
	return el.Child(stream.NSStreamErrors, string(cond)) != nil
}
