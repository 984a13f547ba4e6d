package stream_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (ours, theirs net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	ours, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	theirs = <-acc
	require.NotNil(t, theirs)
	t.Cleanup(func() { ours.Close(); theirs.Close() })
	return ours, theirs
}

// proxy forwards bytes between a Conn and a server over loopback TCP
// until stall, after which it reads and drops everything in both
// directions without closing either connection: a server that vanished
// behind a NAT, as the Conn sees it.
type proxy struct {
	stalled atomic.Bool
}

func (p *proxy) stall() { p.stalled.Store(true) }

// newProxied returns the Conn's end of a connection that goes through a
// proxy to the returned server end.
func newProxied(t *testing.T) (ours, server net.Conn, p *proxy) {
	t.Helper()
	ours, in := tcpPair(t)
	out, server := tcpPair(t)
	p = &proxy{}
	pipe := func(dst io.Writer, src io.Reader) {
		buf := make([]byte, 4096)
		for {
			n, err := src.Read(buf)
			if n > 0 && !p.stalled.Load() {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go pipe(out, in)
	go pipe(in, out)
	return ours, server, p
}

// peerEvent is one thing the peer read from the Conn: whitespace between
// stanzas, a stanza, or the closing tag (or an error ending the read).
type peerEvent struct {
	ws  string
	iq  *iq.IQ
	end bool
	err error
	at  time.Time
}

// readPeer decodes, with encoding/xml, what the Conn writes (a stream
// made by New, whose header is not written) and reports each top-level
// item. Text between stanzas that is not whitespace is an error.
func readPeer(r io.Reader) <-chan peerEvent {
	ch := make(chan peerEvent, 1024)
	go func() {
		defer close(ch)
		dec := xml.NewDecoder(io.MultiReader(strings.NewReader(
			`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`), r))
		if _, err := dec.Token(); err != nil {
			ch <- peerEvent{err: err}
			return
		}
		for {
			tok, err := dec.Token()
			if err != nil {
				ch <- peerEvent{err: err, at: time.Now()}
				return
			}
			switch tok := tok.(type) {
			case xml.CharData:
				if strings.TrimSpace(string(tok)) != "" {
					ch <- peerEvent{err: fmt.Errorf("text between stanzas: %q", tok)}
					return
				}
				ch <- peerEvent{ws: string(tok), at: time.Now()}
			case xml.StartElement:
				var i iq.IQ
				if err := dec.DecodeElement(&i, &tok); err != nil {
					ch <- peerEvent{err: err}
					return
				}
				ch <- peerEvent{iq: &i, at: time.Now()}
			case xml.EndElement:
				ch <- peerEvent{end: true, at: time.Now()}
				return
			}
		}
	}()
	return ch
}

// answerPings plays a server that answers every ping with an empty
// result (or with cancel/service-unavailable when asErr), says nothing of
// its own, and reports the other IQs it reads on others.
func answerPings(t *testing.T, srv net.Conn, asErr bool, pings *atomic.Int32, others chan<- *iq.IQ) {
	t.Helper()
	go func() {
		for ev := range readPeer(srv) {
			if ev.iq == nil {
				continue
			}
			i := ev.iq
			if i.Type == iq.TypeGet && i.Payload != nil && i.Payload.Name.Space == stream.NSPing {
				pings.Add(1)
				reply := i.Result(nil)
				if asErr {
					reply = i.ErrorReply(iq.NewError(iq.Cancel, iq.ServiceUnavailable, ""))
				}
				reply.From, reply.To = i.To, i.From
				b, err := reply.AppendXML(nil)
				if err != nil {
					return
				}
				if _, err := srv.Write(b); err != nil {
					return
				}
				continue
			}
			if others != nil {
				others <- i
			}
		}
	}()
}

type served struct {
	conn *stream.Conn
	ep   *iq.Endpoint
	errc chan error
}

// serveOn starts Serve for a Conn made by New over nc.
func serveOn(t *testing.T, nc net.Conn, register func(*iq.Endpoint), opts ...stream.Option) *served {
	t.Helper()
	conn := stream.New(nc, opts...)
	ep := iq.NewEndpoint(conn, iq.WithLocalJID("me@example.org/r"))
	if register != nil {
		register(ep)
	}
	s := &served{conn: conn, ep: ep, errc: make(chan error, 1)}
	go func() { s.errc <- conn.Serve(context.Background(), ep, nil) }()
	t.Cleanup(func() {
		conn.Close()
		select {
		case <-s.errc:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return s
}

// TestBugDeadConnectionGoesUnnoticed: a server that vanished without
// closing the TCP connection left the stream open for ever, its pending
// requests waiting for their own timeouts and the component deaf. Now
// nothing read for the read timeout sends a ping, and nothing read in half
// as long again ends the stream with ErrIdle, failing what is pending.
func TestBugDeadConnectionGoesUnnoticed(t *testing.T) {
	leakCheck(t)
	const rt = 200 * time.Millisecond
	ours, srv, p := newProxied(t)
	var pings atomic.Int32
	answerPings(t, srv, false, &pings, nil)
	s := serveOn(t, ours, nil, stream.WithReadTimeout(rt), stream.WithKeepalive(rt/4))

	// Healthy first: the pings are answered, the stream lives on.
	time.Sleep(3 * rt)
	require.NotZero(t, pings.Load(), "no ping after %v of silence", 3*rt)
	select {
	case err := <-s.errc:
		t.Fatalf("a healthy idle stream ended: %v", err)
	default:
	}

	pending := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := s.ep.Caller.Get(ctx, "peer@example.org/x", iq.NewElement(hNS, "q"))
		pending <- err
	}()
	require.Eventually(t, func() bool { return s.ep.Caller.Pending() == 1 }, 5*time.Second, time.Millisecond)

	p.stall()
	stalled := time.Now()
	var err error
	select {
	case err = <-s.errc:
	case <-time.After(10 * rt):
		t.Fatalf("the stream was still open %v after the server went silent", 10*rt)
	}
	took := time.Since(stalled)
	assert.ErrorIs(t, err, stream.ErrIdle)
	// 1.5×rt after the last byte read, which came before the stall.
	assert.Less(t, took, 10*rt)

	select {
	case err := <-pending:
		assert.ErrorIs(t, err, iq.ErrClosed)
		assert.ErrorIs(t, err, stream.ErrIdle)
	case <-time.After(5 * time.Second):
		t.Fatal("the pending request did not fail")
	}
	s.errc <- nil // for the cleanup
}

// TestReadTimeoutSparesHealthyIdleStream: a server that never writes on
// its own but answers the ping (with a result, or with an error: any
// answer proves the stream alive) keeps the stream open however long it
// is idle.
func TestReadTimeoutSparesHealthyIdleStream(t *testing.T) {
	for _, tc := range []struct {
		name  string
		asErr bool
		opts  []stream.Option
	}{
		{"ping result", false, nil},
		{"ping error", true, nil},
		{"keepalives off", false, []stream.Option{stream.WithKeepalive(0)}},
		{"ping target", false, []stream.Option{stream.WithPingTarget("example.org")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			const rt = 50 * time.Millisecond
			ours, srv := tcpPair(t)
			var pings atomic.Int32
			answerPings(t, srv, tc.asErr, &pings, nil)
			s := serveOn(t, ours, nil, append([]stream.Option{stream.WithReadTimeout(rt)}, tc.opts...)...)
			time.Sleep(10 * rt)
			select {
			case err := <-s.errc:
				t.Fatalf("a healthy idle stream ended: %v", err)
				s.errc <- nil
			default:
			}
			assert.GreaterOrEqual(t, pings.Load(), int32(2), "a ping after each read timeout of silence")
		})
	}
}

// TestKeepaliveBetweenStanzasOnly: after the keepalive interval of
// silence the peer reads whitespace; with writers busy at the same time,
// every stanza still arrives whole (encoding/xml decodes each one, with
// its exact id and text) and whitespace only ever lands between them.
func TestKeepaliveBetweenStanzasOnly(t *testing.T) {
	leakCheck(t)
	const ka = 20 * time.Millisecond
	ours, srv := tcpPair(t)
	start := time.Now() // before the Conn exists: its silence starts with it
	s := serveOn(t, ours, nil, stream.WithKeepalive(ka), stream.WithReadTimeout(0))

	// encoding/xml reports text only once the next tag starts: the first
	// keepalive is read as bytes.
	require.NoError(t, srv.SetReadDeadline(start.Add(50*ka)))
	b := make([]byte, 1)
	_, err := io.ReadFull(srv, b)
	require.NoError(t, err, "no keepalive after silence")
	assert.Equal(t, " ", string(b))
	assert.GreaterOrEqual(t, time.Since(start), ka-ka/4, "keepalive before the interval")
	require.NoError(t, srv.SetReadDeadline(time.Time{}))
	events := readPeer(srv)

	// Bursts of concurrent writers, with pauses a little longer than the
	// interval between them, so that keepalives come due as bursts start.
	const writers, rounds, each = 8, 8, 5
	done := make(chan struct{})
	go func() {
		defer close(done)
		for r := range rounds {
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := range each {
						n := r*each + k
						payload := iq.NewElement("urn:test:ka", "q")
						payload.Content = append(payload.Content, iq.Node{Text: fmt.Sprintf("payload-%d-%d", w, n)})
						i := &iq.IQ{Type: iq.TypeSet, ID: fmt.Sprintf("w%d-%d", w, n), To: "peer@example.org/x", Payload: payload}
						assert.NoError(t, s.conn.SendIQ(context.Background(), i))
					}
				}()
			}
			wg.Wait()
			time.Sleep(ka + time.Duration(r)*ka/4)
		}
	}()
	const total = writers * rounds * each
	seen := map[string]bool{}
	spaces := 0
	for len(seen) < total {
		select {
		case ev := <-events:
			require.NoError(t, ev.err)
			if ev.iq == nil {
				spaces++
				continue
			}
			require.NotNil(t, ev.iq.Payload)
			var w, n int
			_, err := fmt.Sscanf(ev.iq.ID, "w%d-%d", &w, &n)
			require.NoError(t, err, ev.iq.ID)
			assert.Equal(t, fmt.Sprintf("payload-%d-%d", w, n), ev.iq.Payload.Text(), "stanza %s altered", ev.iq.ID)
			assert.Equal(t, "peer@example.org/x", ev.iq.To)
			assert.False(t, seen[ev.iq.ID], "stanza %s twice", ev.iq.ID)
			seen[ev.iq.ID] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d stanzas arrived", len(seen))
		}
	}
	<-done
	assert.Positive(t, spaces, "no keepalive among the writes")
}

// TestOptionsPanicOnNegative: negative durations are programming errors.
func TestKeepaliveOptionsPanicOnNegative(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"WithKeepalive", func() { stream.WithKeepalive(-1) }},
		{"WithReadTimeout", func() { stream.WithReadTimeout(-1) }},
		{"WithPingTarget", func() { stream.WithPingTarget("a@b@c") }},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Panics(t, tc.fn) })
	}
}

// readOpenHeader consumes the XML declaration and stream header Open
// writes, and answers with a component stream header from domain.
func readOpenHeader(t *testing.T, nc net.Conn, domain string) {
	t.Helper()
	b := make([]byte, 1)
	for seen := 0; seen < 2; {
		_, err := io.ReadFull(nc, b)
		require.NoError(t, err)
		if b[0] == '>' {
			seen++
		}
	}
	_, err := nc.Write([]byte(`<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' from='` + domain + `' id='s1'>`))
	require.NoError(t, err)
}

// TestPingAddressAndConn: the read timeout's ping goes to the from of the
// peer's stream header (on a component stream, the component's own
// domain: the server routes it back), or to WithPingTarget; and its
// context names the Conn, for a Sender that spreads requests over several
// (a pool) to write it on the stream it probes.
func TestPingAddressAndConn(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []stream.Option
		want string
	}{
		{"peer header", nil, "comp.example"},
		{"ping target", []stream.Option{stream.WithPingTarget("example")}, "example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			ours, srv := tcpPair(t)
			opened := make(chan struct{})
			go func() {
				defer close(opened)
				readOpenHeader(t, srv, "comp.example")
			}()
			opts := append([]stream.Option{stream.WithReadTimeout(30 * time.Millisecond), stream.WithLocalAddress("comp.example")}, tc.opts...)
			conn, err := stream.Open(context.Background(), ours, stream.Header{NS: iq.NSComponent, To: "comp.example"}, opts...)
			require.NoError(t, err)
			<-opened

			sawConn := make(chan bool, 16)
			ep := iq.NewEndpoint(iq.SenderFunc(func(ctx context.Context, i *iq.IQ) error {
				c, ok := stream.ConnFromContext(ctx)
				select {
				case sawConn <- ok && c == conn:
				default:
				}
				return conn.SendIQ(ctx, i)
			}), iq.WithLocalJID("comp.example"))
			errc := make(chan error, 1)
			go func() { errc <- conn.Serve(context.Background(), ep, nil) }()

			// The server's side, decoded in the component namespace.
			dec := xml.NewDecoder(io.MultiReader(strings.NewReader(
				`<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>`), srv))
			_, err = dec.Token()
			require.NoError(t, err)
			var ping iq.IQ
			for {
				tok, err := dec.Token()
				require.NoError(t, err)
				if se, ok := tok.(xml.StartElement); ok {
					require.NoError(t, dec.DecodeElement(&ping, &se))
					break
				}
			}
			assert.Equal(t, iq.TypeGet, ping.Type)
			require.NotNil(t, ping.Payload)
			assert.Equal(t, stream.NSPing, ping.Payload.Name.Space)
			assert.Equal(t, tc.want, ping.To)
			assert.Equal(t, "comp.example", ping.From)
			assert.True(t, <-sawConn, "the ping's context does not name its Conn")

			conn.Close()
			assert.NoError(t, <-errc)
		})
	}
}

// TestLivenessStampsFollowTraffic: the Conn reads the clock once per
// eighth of the interval, not per transfer, yet a stream in steady use
// gets no keepalive and no ping, however many intervals it lasts (each
// window is stamped anew); once the traffic stops, the keepalive comes at
// least 7/8 of the interval after the last write, and the ping at least
// 7/8 of the read timeout after the last read.
func TestLivenessStampsFollowTraffic(t *testing.T) {
	const d = 120 * time.Millisecond
	// busy has the peer send a get every d/16 for 8 intervals, which the
	// Conn answers with feature-not-implemented: a read and a write each
	// time. It returns when the last get was sent.
	busy := func(t *testing.T, srv net.Conn) (n int, lastSent time.Time) {
		n = 8 * 16
		for i := range n {
			get := fmt.Sprintf(`<iq type='get' id='g%d' from='peer@example.org/x'><q xmlns='urn:test:busy'/></iq>`, i)
			_, err := srv.Write([]byte(get))
			require.NoError(t, err)
			lastSent = time.Now()
			time.Sleep(d / 16)
		}
		return n, lastSent
	}

	t.Run("keepalive", func(t *testing.T) {
		leakCheck(t)
		ours, srv := tcpPair(t)
		serveOn(t, ours, nil, stream.WithKeepalive(d), stream.WithReadTimeout(0))
		// The Conn's replies hold no text: a space right after a '>' is a
		// keepalive. Each read is timed as it returns.
		type chunk struct {
			b  []byte
			at time.Time
		}
		chunks := make(chan chunk, 1024)
		go func() {
			defer close(chunks)
			for {
				b := make([]byte, 4096)
				n, err := srv.Read(b)
				if n > 0 {
					chunks <- chunk{b[:n], time.Now()}
				}
				if err != nil {
					return
				}
			}
		}()
		var sent int
		busyDone := make(chan struct{})
		go func() {
			defer close(busyDone)
			sent, _ = busy(t, srv)
		}()
		var prev byte
		replies, lastReply, space := 0, time.Time{}, time.Time{}
		for space.IsZero() {
			select {
			case c, ok := <-chunks:
				require.True(t, ok, "the stream ended")
				for _, b := range c.b {
					if b == ' ' && prev == '>' {
						space = c.at
						break
					}
					if b == '>' && prev == 'q' { // the end of </iq>
						replies++
						lastReply = c.at
					}
					prev = b
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no keepalive after %d replies", replies)
			}
		}
		<-busyDone
		require.Equal(t, sent, replies, "a keepalive while the stream was in use")
		// The peer reads the last reply a moment after it is written:
		// d/16 of slack for that.
		assert.GreaterOrEqual(t, space.Sub(lastReply), d*7/8-d/16, "keepalive too early after the last write")
	})

	t.Run("read timeout", func(t *testing.T) {
		leakCheck(t)
		ours, srv := tcpPair(t)
		serveOn(t, ours, nil, stream.WithKeepalive(0), stream.WithReadTimeout(d))
		events := readPeer(srv)
		n, lastSent := busy(t, srv)
		for replies := 0; replies < n; {
			select {
			case ev := <-events:
				require.NoError(t, ev.err)
				require.NotNil(t, ev.iq)
				require.Equal(t, iq.TypeError, ev.iq.Type, "a ping while the stream was in use: %+v", ev.iq)
				replies++
			case <-time.After(10 * time.Second):
				t.Fatalf("only %d replies", replies)
			}
		}
		select {
		case ev := <-events:
			require.NoError(t, ev.err)
			require.NotNil(t, ev.iq)
			require.Equal(t, iq.TypeGet, ev.iq.Type)
			require.NotNil(t, ev.iq.Payload)
			require.Equal(t, stream.NSPing, ev.iq.Payload.Name.Space)
			// The get was sent before the Conn read it: no slack.
			assert.GreaterOrEqual(t, ev.at.Sub(lastSent), d*7/8, "ping too early after the last read")
		case <-time.After(10 * time.Second):
			t.Fatal("no ping after silence")
		}
	})
}

// TestBugLivenessLateAfterTransfersBeforeServe: a transfer before Serve
// (the peer's stream header read by Open, a stanza sent early) opened a
// stamp's window that nothing closed until the monitor started, which
// then took the window for one reaching to Serve's start: the keepalive
// and the read timeout counted from Serve, not from the last transfer,
// and came late by the time between them.
func TestBugLivenessLateAfterTransfersBeforeServe(t *testing.T) {
	const d = 300 * time.Millisecond
	t.Run("keepalive after a write before Serve", func(t *testing.T) {
		leakCheck(t)
		ours, srv := tcpPair(t)
		conn := stream.New(ours, stream.WithKeepalive(d), stream.WithReadTimeout(0))
		require.NoError(t, conn.SendIQ(context.Background(), &iq.IQ{Type: iq.TypeResult, ID: "early", To: "peer@example.org/x"}))
		wrote := time.Now()
		time.Sleep(d) // the program's setup, then Serve
		ep := iq.NewEndpoint(conn, iq.WithLocalJID("me@example.org/r"))
		errc := make(chan error, 1)
		go func() { errc <- conn.Serve(context.Background(), ep, nil) }()
		t.Cleanup(func() { conn.Close(); <-errc })
		require.NoError(t, srv.SetReadDeadline(time.Now().Add(20*d)))
		var prev byte
		b := make([]byte, 1)
		for {
			_, err := srv.Read(b)
			require.NoError(t, err, "no keepalive")
			if b[0] == ' ' && prev == '>' {
				break
			}
			prev = b[0]
		}
		// d after the write at the latest, with a quarter of slack for
		// the timer; late by d before the fix.
		assert.LessOrEqual(t, time.Since(wrote), d+d/4, "keepalive late after the last write")
	})
	t.Run("silent peer after its header", func(t *testing.T) {
		leakCheck(t)
		ours, srv := tcpPair(t)
		go readOpenHeader(t, srv, "c.example")
		conn, err := stream.Open(context.Background(), ours, stream.Header{NS: iq.NSComponent, To: "c.example"},
			stream.WithReadTimeout(d), stream.WithKeepalive(0))
		require.NoError(t, err)
		read := time.Now() // the header: the last byte the peer sends
		go func() {
			b := make([]byte, 4096)
			for {
				if _, err := srv.Read(b); err != nil {
					return
				}
			}
		}()
		time.Sleep(d)
		ep := iq.NewEndpoint(conn, iq.WithLocalJID("c.example"))
		errc := make(chan error, 1)
		go func() { errc <- conn.Serve(context.Background(), ep, nil) }()
		select {
		case err := <-errc:
			assert.ErrorIs(t, err, stream.ErrIdle)
			// 1.5×d after the last byte read at the latest, with a
			// quarter of d of slack; late by d before the fix.
			assert.LessOrEqual(t, time.Since(read), d*3/2+d/4, "ended late after the last byte read")
		case <-time.After(20 * d):
			conn.Close()
			<-errc
			t.Fatal("a silent stream never ended")
		}
	})
}
