package component_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/component"
	"github.com/xmpp-iq/iq/stream"
)

const waitLong = 5 * time.Second

func sha1Hex(s string) string {
	h := sha1.New()
	_, _ = io.WriteString(h, s)
	return hex.EncodeToString(h.Sum(nil))
}

func TestDigest(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, tc := range []struct {
		name, id, secret string
	}{
		{"XEP-0114 example", "3BF96D32", "secret"},
		{"empty id", "", "secret"},
		{"empty secret", "abc", ""},
		{"both empty", "", ""},
		{"non-ASCII secret", "id-1", "sécret ✓"},
		{"long", strings.Repeat("i", 300), strings.Repeat("s", 1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := component.Digest(tc.id, tc.secret)
			assert.Equal(t, sha1Hex(tc.id+tc.secret), got)
			assert.Len(t, got, 40)
			assert.Equal(t, strings.ToLower(got), got, "lower-case hex")
		})
	}
	// The concatenation order matters.
	assert.NotEqual(t, component.Digest("a", "b"), component.Digest("b", "a"))
}

// fakeServer plays a component-accepting server on one connection. It reads
// the component's header, answers with its own carrying id, reads the
// handshake, checks it against secret, and then does what answer says.
type fakeServer struct {
	id      string // "" sends no id attribute
	domain  string // the to the component must send
	secret  string
	answer  func(w io.Writer, digestOK bool) // after the handshake is read
	header  string                           // replaces the server's header when set
	gotTo   chan string
	gotNS   chan string
	gotHash chan string
}

func newFakeServer(id, domain, secret string, answer func(w io.Writer, ok bool)) *fakeServer {
	return &fakeServer{id: id, domain: domain, secret: secret, answer: answer,
		gotTo: make(chan string, 1), gotNS: make(chan string, 1), gotHash: make(chan string, 1)}
}

func (s *fakeServer) serve(nc net.Conn) error {
	dec := xml.NewDecoder(nc)
	var hdr xml.StartElement
	for {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("server: read header: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			hdr = se.Copy()
			break
		}
	}
	if hdr.Name.Space != stream.NSStream || hdr.Name.Local != "stream" {
		return fmt.Errorf("server: header is <%s xmlns=%q>", hdr.Name.Local, hdr.Name.Space)
	}
	for _, a := range hdr.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "to":
			s.gotTo <- a.Value
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			s.gotNS <- a.Value
		}
	}
	h := s.header
	if h == "" {
		idAttr := ""
		if s.id != "" {
			idAttr = ` id='` + s.id + `'`
		}
		h = `<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' from='` + s.domain + `'` + idAttr + `>`
	}
	if _, err := io.WriteString(nc, h); err != nil {
		return err
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("server: read handshake: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		var hs struct {
			XMLName xml.Name
			Digest  string `xml:",chardata"`
		}
		if err := dec.DecodeElement(&hs, &se); err != nil {
			return err
		}
		if se.Name.Space != component.NSAccept || se.Name.Local != "handshake" {
			return fmt.Errorf("server: got <%s xmlns=%q>, want a handshake", se.Name.Local, se.Name.Space)
		}
		s.gotHash <- hs.Digest
		s.answer(nc, hs.Digest == component.Digest(s.id, s.secret))
		return nil
	}
}

func streamErrorXML(cond stream.Condition, text string) string {
	x := `<stream:error><` + string(cond) + ` xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>`
	if text != "" {
		x += `<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>` + text + `</text>`
	}
	return x + `</stream:error></stream:stream>`
}

func writeStr(s string) func(io.Writer, bool) {
	return func(w io.Writer, _ bool) { _, _ = io.WriteString(w, s) }
}

// honest answers <handshake/> for the right digest and not-authorized
// for a wrong one, as a server does.
func honest(w io.Writer, ok bool) {
	if ok {
		_, _ = io.WriteString(w, `<handshake/>`)
		return
	}
	_, _ = io.WriteString(w, streamErrorXML(stream.NotAuthorized, "bad secret"))
}

func TestConnect(t *testing.T) {
	const domain = "echo.example"
	for _, tc := range []struct {
		name     string
		id       string
		secret   string // the component's; the server's is "s3cret"
		answer   func(io.Writer, bool)
		header   string
		wantErr  []error
		cond     stream.Condition // the *stream.StreamError expected, if any
		noDigest bool             // the server never gets a handshake
	}{
		{name: "success", id: "3BF96D32", secret: "s3cret", answer: honest},
		{name: "success with explicit namespace", id: "x1", secret: "s3cret",
			answer: writeStr(`<handshake xmlns='jabber:component:accept'/>`)},
		{name: "wrong secret", id: "3BF96D32", secret: "wrong", answer: honest,
			wantErr: []error{component.ErrNotAuthorized}, cond: stream.NotAuthorized},
		{name: "conflict", id: "id2", secret: "s3cret", answer: writeStr(streamErrorXML(stream.Conflict, "")),
			wantErr: []error{component.ErrConflict}, cond: stream.Conflict},
		{name: "host-unknown after an empty id", id: "", secret: "s3cret", answer: writeStr(streamErrorXML(stream.HostUnknown, "")),
			wantErr: []error{component.ErrHostUnknown}, cond: stream.HostUnknown},
		{name: "other stream error", id: "id3", secret: "s3cret", answer: writeStr(streamErrorXML(stream.SystemShutdown, "bye")),
			wantErr: []error{component.ErrHandshake}, cond: stream.SystemShutdown},
		{name: "unexpected element", id: "id4", secret: "s3cret", answer: writeStr(`<message><body>hi</body></message>`),
			wantErr: []error{component.ErrHandshake}},
		{name: "handshake in a foreign namespace", id: "id5", secret: "s3cret", answer: writeStr(`<handshake xmlns='urn:other'/>`),
			wantErr: []error{component.ErrHandshake}},
		{name: "stream closed instead", id: "id6", secret: "s3cret", answer: writeStr(`</stream:stream>`),
			wantErr: []error{component.ErrHandshake, io.EOF}},
		{name: "connection dropped", id: "id7", secret: "s3cret", answer: func(w io.Writer, _ bool) { _ = w.(net.Conn).Close() },
			wantErr: []error{component.ErrHandshake}},
		{name: "not well-formed answer", id: "id8", secret: "s3cret", answer: writeStr(`<handshake></x>`),
			wantErr: []error{component.ErrHandshake, stream.ErrNotWellFormed}},
		{name: "header is not a stream", secret: "s3cret", header: `<html>`, noDigest: true,
			wantErr: []error{component.ErrHandshake}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			p1, p2 := net.Pipe()
			srv := newFakeServer(tc.id, domain, "s3cret", tc.answer)
			srv.header = tc.header
			srvErr := make(chan error, 1)
			go func() {
				err := srv.serve(p2)
				if tc.noDigest {
					_ = p2.Close()
				}
				srvErr <- err
			}()
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			conn, err := component.Connect(ctx, p1, domain, tc.secret)

			if !tc.noDigest {
				require.NoError(t, recv(t, srvErr))
				assert.Equal(t, domain, recv(t, srv.gotTo))
				assert.Equal(t, component.NSAccept, recv(t, srv.gotNS))
				assert.Equal(t, sha1Hex(tc.id+tc.secret), recv(t, srv.gotHash))
			} else {
				_ = p1.Close() // ends the server's wait for a handshake
				assert.Error(t, recv(t, srvErr))
			}
			if tc.wantErr == nil {
				require.NoError(t, err)
				require.NotNil(t, conn)
				assert.Equal(t, tc.id, conn.PeerHeader().ID)
				assert.Equal(t, domain, conn.PeerHeader().From)
				assert.Equal(t, component.NSAccept, conn.PeerHeader().NS)
				testServeAfterHandshake(t, conn, p2)
				return
			}
			require.Error(t, err)
			assert.Nil(t, conn)
			for _, want := range tc.wantErr {
				assert.ErrorIs(t, err, want)
			}
			for _, other := range []error{component.ErrNotAuthorized, component.ErrConflict, component.ErrHostUnknown} {
				if !errorsIn(other, tc.wantErr) {
					assert.NotErrorIs(t, err, other)
				}
			}
			var se *stream.StreamError
			if tc.cond != "" {
				require.ErrorAs(t, err, &se)
				assert.Equal(t, tc.cond, se.Condition)
				assert.ErrorIs(t, err, &stream.StreamError{Condition: tc.cond})
			} else {
				assert.False(t, errors.As(err, &se), "no stream error in %v", err)
			}
			assert.Contains(t, err.Error(), domain)
			// The transport is the caller's to close.
			_ = p1.Close()
			_ = p2.Close()
		})
	}
}

// recv waits for a value from c, failing the test after waitLong.
func recv[T any](t *testing.T, c chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(waitLong):
		t.Fatalf("nothing received within %v", waitLong)
	}
	var zero T
	return zero
}

func errorsIn(e error, list []error) bool {
	for _, l := range list {
		if l == e {
			return true
		}
	}
	return false
}

// testServeAfterHandshake checks that the Conn Connect returned serves IQs
// in the component namespace, then closes everything.
func testServeAfterHandshake(t *testing.T, conn *stream.Conn, srv net.Conn) {
	t.Helper()
	ep := iq.NewEndpoint(conn, iq.WithLocalJID("echo.example"))
	defer ep.Close()
	ep.Callee.Get("urn:example:echo", "echo", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		return iq.NewElement("urn:example:echo", "echo").AppendText(req.Payload.Text()), nil
	})
	served := make(chan error, 1)
	go func() { served <- conn.Serve(context.Background(), ep, nil) }()

	_, err := io.WriteString(srv, `<iq type='get' id='e1' from='user@example/r' to='echo.example'><echo xmlns='urn:example:echo'>ping</echo></iq>`)
	require.NoError(t, err)
	dec := xml.NewDecoder(io.MultiReader(strings.NewReader(`<s xmlns='jabber:component:accept'>`), srv))
	_, err = dec.Token()
	require.NoError(t, err)
	var reply iq.IQ
	require.NoError(t, srv.SetReadDeadline(time.Now().Add(waitLong)))
	require.NoError(t, dec.Decode(&reply))
	assert.Equal(t, "e1", reply.ID)
	assert.Equal(t, iq.TypeResult, reply.Type)
	assert.Equal(t, "user@example/r", reply.To)
	require.NotNil(t, reply.Payload)
	assert.Equal(t, "ping", reply.Payload.Text())

	// The server ends the stream; the component's Serve returns nil and
	// closes the transport. (Whether it writes its own closing tag depends
	// on the write lock: see stream's
	// TestEnd_StreamErrorNotDroppedWhileAWriteHoldsTheLock.)
	eof := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, srv); eof <- err }()
	_, err = io.WriteString(srv, `</stream:stream>`)
	require.NoError(t, err)
	select {
	case err := <-served:
		assert.NoError(t, err)
	case <-time.After(waitLong):
		t.Fatal("Serve did not end")
	}
	assert.NoError(t, recv(t, eof), "the transport is closed")
	_ = srv.Close()
}

func TestDial(t *testing.T) {
	defer goleak.VerifyNone(t)
	const domain = "echo.example"
	t.Run("success over TCP", func(t *testing.T) {
		defer goleak.VerifyNone(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		srv := newFakeServer("tcp-id", domain, "s3cret", honest)
		srvErr := make(chan error, 1)
		go func() {
			nc, err := ln.Accept()
			if err != nil {
				srvErr <- err
				return
			}
			defer nc.Close()
			if err := srv.serve(nc); err != nil {
				srvErr <- err
				return
			}
			_, _ = io.Copy(io.Discard, nc)
			srvErr <- nil
		}()
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		conn, err := component.Dial(ctx, "tcp", ln.Addr().String(), domain, "s3cret")
		require.NoError(t, err)
		assert.Equal(t, "tcp-id", conn.PeerHeader().ID)
		// The handshake's deadline does not outlive it: the Conn still
		// writes after ctx ends.
		cancel()
		require.NoError(t, conn.SendIQ(context.Background(), &iq.IQ{ID: "r", Type: iq.TypeResult}))
		require.NoError(t, conn.Close())
		require.NoError(t, recv(t, srvErr))
	})
	t.Run("wrong secret over TCP", func(t *testing.T) {
		defer goleak.VerifyNone(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		srv := newFakeServer("tcp-id", domain, "s3cret", honest)
		go func() {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			defer nc.Close()
			_ = srv.serve(nc)
			_, _ = io.Copy(io.Discard, nc)
		}()
		conn, err := component.Dial(context.Background(), "tcp", ln.Addr().String(), domain, "nope")
		assert.Nil(t, conn)
		assert.ErrorIs(t, err, component.ErrNotAuthorized)
		var se *stream.StreamError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "bad secret", se.Text)
	})
	t.Run("closed port", func(t *testing.T) {
		defer goleak.VerifyNone(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		start := time.Now()
		conn, err := component.Dial(ctx, "tcp", addr, domain, "s3cret")
		require.Error(t, err)
		assert.Nil(t, conn)
		assert.Contains(t, err.Error(), addr)
		assert.Less(t, time.Since(start), 3*time.Second)
	})
	t.Run("silent server hits the deadline", func(t *testing.T) {
		defer goleak.VerifyNone(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			defer nc.Close()
			_, _ = io.Copy(io.Discard, nc)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		conn, err := component.Dial(ctx, "tcp", ln.Addr().String(), domain, "s3cret")
		assert.Nil(t, conn)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorIs(t, err, component.ErrHandshake)
		assert.Less(t, time.Since(start), 3*time.Second)
		select {
		case <-done: // Dial closed its connection
		case <-time.After(waitLong):
			t.Fatal("Dial left its connection open")
		}
	})
	t.Run("silent server after the header hits the deadline", func(t *testing.T) {
		defer goleak.VerifyNone(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		done := make(chan struct{})
		srv := newFakeServer("id", domain, "s3cret", func(io.Writer, bool) {})
		go func() {
			defer close(done)
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			defer nc.Close()
			_ = srv.serve(nc)
			_, _ = io.Copy(io.Discard, nc)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		conn, err := component.Dial(ctx, "tcp", ln.Addr().String(), domain, "s3cret")
		assert.Nil(t, conn)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorIs(t, err, component.ErrHandshake)
		select {
		case <-done:
		case <-time.After(waitLong):
			t.Fatal("Dial left its connection open")
		}
	})
}

// connected returns a Conn that completed the handshake with a fake server
// on the other end of a pipe, and that end, for the test to play the
// server.
func connected(t *testing.T, domain string, opts ...stream.Option) (*stream.Conn, net.Conn) {
	t.Helper()
	p1, p2 := net.Pipe()
	srv := newFakeServer("id-from", domain, "s3cret", honest)
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.serve(p2) }()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	conn, err := component.Connect(ctx, p1, domain, "s3cret", opts...)
	require.NoError(t, err)
	require.NoError(t, recv(t, srvErr))
	t.Cleanup(func() {
		_ = conn.Close()
		_ = p2.Close()
		<-conn.Done()
	})
	return conn, p2
}

// TestBugComponentRequestsCarryNoFrom: a component's own requests went
// out without from, and ejabberd ends such a stream (improper-addressing).
// Connect makes the stream send from the component's domain.
func TestBugComponentRequestsCarryNoFrom(t *testing.T) {
	const domain = "echo.example"
	for _, tc := range []struct {
		name     string
		opts     []stream.Option
		from     string // the request's own from
		wantFrom string
	}{
		{name: "no from", wantFrom: domain},
		{name: "a from the caller chose in the domain", from: "bot@echo.example/r", wantFrom: "bot@echo.example/r"},
		{name: "another default address in the domain", opts: []stream.Option{stream.WithLocalAddress("bot@echo.example")},
			wantFrom: "bot@echo.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			conn, srv := connected(t, domain, tc.opts...)
			ep := iq.NewEndpoint(conn, iq.WithLocalJID(domain))
			defer ep.Close()
			served := make(chan error, 1)
			go func() { served <- conn.Serve(context.Background(), ep, nil) }()
			defer func() { _ = conn.Close(); <-served }()

			errc := make(chan error, 1)
			go func() {
				_, err := ep.Caller.Request(context.Background(), &iq.IQ{ID: "r1", To: "user@example.org", From: tc.from,
					Type: iq.TypeGet, Payload: iq.NewElement("urn:example:echo", "echo")})
				errc <- err
			}()
			dec := xml.NewDecoder(io.MultiReader(strings.NewReader(`<s xmlns='jabber:component:accept'>`), srv))
			_, err := dec.Token()
			require.NoError(t, err)
			require.NoError(t, srv.SetReadDeadline(time.Now().Add(waitLong)))
			var req iq.IQ
			require.NoError(t, dec.Decode(&req))
			assert.Equal(t, "r1", req.ID)
			assert.Equal(t, tc.wantFrom, req.From)
			go func() { _, _ = io.Copy(io.Discard, srv) }()
			_, err = io.WriteString(srv, `<iq type='result' id='r1' from='user@example.org' to='`+req.From+`'/>`)
			require.NoError(t, err)
			assert.NoError(t, recv(t, errc))

			// A from outside the domain is refused before it is written.
			_, err = ep.Caller.Request(context.Background(), &iq.IQ{ID: "r2", To: "user@example.org", From: "evil.example",
				Type: iq.TypeGet, Payload: iq.NewElement("urn:example:echo", "echo")})
			assert.ErrorIs(t, err, iq.ErrInvalid)
		})
	}
}

func TestConnect_DomainMustBeADomain(t *testing.T) {
	for _, domain := range []string{"", "user@echo.example", "echo.example/r", "@echo.example"} {
		t.Run(domain, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			p1, p2 := net.Pipe()
			defer p2.Close()
			defer p1.Close()
			wrote := make(chan int, 1)
			go func() {
				b, _ := io.ReadAll(p2)
				wrote <- len(b)
			}()
			conn, err := component.Connect(context.Background(), p1, domain, "s3cret")
			assert.Nil(t, conn)
			assert.ErrorIs(t, err, component.ErrHandshake)
			_ = p1.Close()
			assert.Zero(t, recv(t, wrote), "nothing is written")
		})
	}
}
