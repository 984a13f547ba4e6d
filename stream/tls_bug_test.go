package stream_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// tlsPair returns the two ends of a TLS connection, handshake done. Under
// it is a net.Pipe, which takes a Write only as the peer reads it, so
// that a peer that stops reading blocks the writer at once; or, with tcp,
// a loopback TCP connection with small socket buffers, where a Write
// blocks once they are full and a write cut short leaves part of a TLS
// record on the wire. The client's transport under TLS reports each Write
// as it starts. The certificate is a throwaway self-signed one made here.
func tlsPair(t testing.TB, tcp bool) (client *tls.Conn, under *signalConn, server *tls.Conn) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(leaf)

	var c1, c2 net.Conn
	if tcp {
		c1, c2 = tcpPair(t)
		require.NoError(t, c1.(*net.TCPConn).SetWriteBuffer(128<<10))
		require.NoError(t, c2.(*net.TCPConn).SetReadBuffer(128<<10))
	} else {
		c1, c2 = net.Pipe()
	}
	under = &signalConn{Conn: c1, entered: make(chan struct{}, 64)}
	// No session tickets: in TLS 1.3 the server would write them after
	// the handshake, to a client nobody reads yet, and block on the pipe.
	server = tls.Server(c2, &tls.Config{
		Certificates:           []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}},
		SessionTicketsDisabled: true,
		MinVersion:             tls.VersionTLS12,
	})
	client = tls.Client(under, &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12})
	errc := make(chan error, 1)
	go func() { errc <- server.Handshake() }()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	require.NoError(t, client.HandshakeContext(ctx))
	select {
	case err := <-errc:
		require.NoError(t, err)
	case <-time.After(waitLong):
		t.Fatal("the server's handshake did not end")
	}
	for len(under.entered) > 0 { // the handshake's writes
		<-under.entered
	}
	t.Cleanup(func() { _ = server.Close(); _ = client.Close() })
	return client, under, server
}

// waitWrite waits until the transport under TLS has a Write under way.
func waitWrite(t *testing.T, under *signalConn) {
	t.Helper()
	select {
	case <-under.entered:
	case <-time.After(waitLong):
		t.Fatal("no write started")
	}
}

// sendIQ starts c.SendIQ(ctx, i) and returns where its result arrives.
func sendIQ(c *stream.Conn, ctx context.Context, i *iq.IQ) chan error {
	errc := make(chan error, 1)
	go func() { errc <- c.SendIQ(ctx, i) }()
	return errc
}

// TestBugShortDeadlineOverTLSEndsTheStreamForEveryone: on a *tls.Conn a
// write cut short by a past write deadline leaves the TLS state corrupt,
// and crypto/tls fails every later Write with the same timeout. Cutting
// short the write of a stanza whose context ended (the sender's own
// write, or the coalesced batch it led or joined) so turned one request's
// short deadline into the end of writing for every request of the stream:
// the other stanzas of the batch, and every stanza after, failed with an
// i/o timeout, on a stream that still looked open. The peer here stops
// reading, one SendIQ has a short deadline and the others long ones; when
// the peer reads again, the others must arrive whole and the stream stay
// usable, while the short one's sender learns at its deadline that its
// context ended.
func TestBugShortDeadlineOverTLSEndsTheStreamForEveryone(t *testing.T) {
	const short = 150 * time.Millisecond
	for _, tc := range []struct {
		name string
		// before: stanzas sent ahead of S, the short one, each with a long
		// deadline; the peer reads the first (A) once S has queued, so
		// that the next Write carries the others, S and those sent after
		// S. Without any, S writes alone and the others queue behind it.
		before []string
		after  []string
		// queued: the peer reads nothing until S's deadline has passed,
		// S still in the queue: nothing of S may be written
		queued bool
	}{
		{name: "its own write", after: []string{"B", "C"}},
		{name: "a batch it leads", before: []string{"A"}, after: []string{"B", "C"}},
		{name: "a batch it joins", before: []string{"A", "B"}, after: []string{"C"}},
		{name: "while queued", before: []string{"A"}, after: []string{"B"}, queued: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			client, under, server := tlsPair(t, false)
			c := stream.New(client)
			long, cancelLong := context.WithTimeout(context.Background(), waitLong)
			defer cancelLong()

			done := map[string]chan error{}
			queued := 0
			send := func(ctx context.Context, id string) {
				done[id] = sendIQ(c, ctx, result(id))
				if len(done) == 1 {
					waitWrite(t, under)
				} else {
					queued++
					waitQueue(t, c, queued)
				}
			}
			for _, id := range tc.before {
				send(long, id)
			}
			sctx, cancelS := context.WithTimeout(context.Background(), short)
			defer cancelS()
			start := time.Now()
			send(sctx, "S")
			for _, id := range tc.after {
				send(long, id)
			}

			if len(tc.before) > 0 && !tc.queued {
				// The peer reads A, then stops again: the next Write, with
				// S in it, blocks until S's deadline passes.
				a, err := result("A").AppendXML(nil)
				require.NoError(t, err)
				assert.Equal(t, string(a), string(readN(t, server, len(a))))
				require.NoError(t, recvErr(t, done["A"], waitLong))
				waitWrite(t, under)
			}
			err := recvErr(t, done["S"], waitLong)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Less(t, time.Since(start), short+time.Second, "S's sender learns at its deadline")

			// The peer reads again.
			w := newWire(server, iq.NSClient)
			var want []string
			for _, id := range append(append([]string(nil), tc.before...), tc.after...) {
				if id == "A" && !tc.queued {
					continue // read already
				}
				want = append(want, id)
				assert.NoError(t, recvErr(t, done[id], waitLong), "%s, with a long deadline, must be written", id)
			}
			require.Nil(t, c.Err(), "the stream goes on")
			// S went out whole or not at all, in its place.
			var got []string
			for len(got) < len(want) {
				if id := w.nextIQ(t).ID; id != "S" {
					got = append(got, id)
				}
			}
			assert.Equal(t, want, got)
			err = c.SendIQ(long, result("D"))
			require.NoError(t, err, "the stream must stay usable after one request's deadline")
			for id := w.nextIQ(t).ID; id != "D"; id = w.nextIQ(t).ID {
				require.Equal(t, "S", id, "only S may come before D")
			}
			raw := closeConn(t, c, w)
			assert.True(t, w.sawEndTag(), "the whole output is one well-formed stream: %v", w.decodeErr())
			if tc.queued {
				assert.NotContains(t, raw, `"S"`, "S's deadline passed before its write began")
			}
		})
	}
}

// bigIQ is a result whose payload carries n bytes of text: more than the
// socket buffers of tlsPair's TCP connection hold.
func bigIQ(id string, n int) *iq.IQ {
	return &iq.IQ{ID: id, Type: iq.TypeResult, Payload: iq.NewElement(hNS, "r").AppendText(strings.Repeat("x", n))}
}

// The same over TCP, where the short-deadline stanza is large and part of
// it is already on the wire, in TLS records, when its deadline passes:
// cut short there, the TLS record under way is broken, and so was the
// stream, for B and C. Now it goes out whole, and B and C after it.
func TestBugShortDeadlineOverTLSEndsTheStreamForEveryone_TCP(t *testing.T) {
	leakCheck(t)
	const short = 300 * time.Millisecond
	client, under, server := tlsPair(t, true)
	c := stream.New(client)
	long, cancelLong := context.WithTimeout(context.Background(), 4*waitLong) // S takes a while to decode under -race
	defer cancelLong()

	sctx, cancelS := context.WithTimeout(context.Background(), short)
	defer cancelS()
	sDone := sendIQ(c, sctx, bigIQ("S", 1<<20))
	waitWrite(t, under)
	bDone := sendIQ(c, long, result("B"))
	waitQueue(t, c, 1)
	cDone := sendIQ(c, long, bigIQ("C", 16<<10))
	waitQueue(t, c, 2)
	require.ErrorIs(t, recvErr(t, sDone, waitLong), context.DeadlineExceeded)

	w := newWire(server, iq.NSClient)
	assert.NoError(t, recvErr(t, bDone, waitLong), "B, with a long deadline, must be written")
	assert.NoError(t, recvErr(t, cDone, waitLong), "C, with a long deadline, must be written")
	require.Nil(t, c.Err(), "the stream goes on")
	got := []string{}
	for _, want := range []string{"S", "B", "C"} {
		i := w.nextIQ(t)
		got = append(got, i.ID)
		if want != "B" {
			require.NotNil(t, i.Payload, "%s", want)
			assert.Len(t, i.Payload.Text(), map[string]int{"S": 1 << 20, "C": 16 << 10}[want], "%s arrives whole", want)
		}
	}
	assert.Equal(t, []string{"S", "B", "C"}, got, "S, begun, is finished whole before B and C")
	require.NoError(t, c.SendIQ(long, result("D")), "the stream must stay usable after one request's deadline")
	assert.Equal(t, "D", w.nextIQ(t).ID)
	closeConn(t, c, w)
	assert.True(t, w.sawEndTag(), "the whole output is one well-formed stream: %v", w.decodeErr())
}

// TestBugTLSWriteTimeoutLeftTheStreamOpenButUnwritable: a write timeout
// the Conn did not cause (a deadline its owner set on the *tls.Conn)
// leaves the TLS state corrupt just the same, and every later Write fails
// at once; the Conn took the timeout for a stanza's own and kept the
// stream open, so that it looked alive (Err nil, Done open) while no
// stanza could ever be written again. Such a timeout now ends the stream,
// and the sender's error wraps ErrClosed.
func TestBugTLSWriteTimeoutLeftTheStreamOpenButUnwritable(t *testing.T) {
	leakCheck(t)
	client, under, server := tlsPair(t, false)
	c := stream.New(client)
	w := newWire(server, iq.NSClient)
	require.NoError(t, c.SendIQ(context.Background(), result("A")))
	assert.Equal(t, "A", w.nextIQ(t).ID)
	<-under.entered

	require.NoError(t, client.SetWriteDeadline(time.Now().Add(-time.Second)))
	err := c.SendIQ(context.Background(), result("B"))
	require.ErrorIs(t, err, stream.ErrClosed)
	select {
	case <-c.Done():
	case <-time.After(waitLong):
		t.Fatal("the stream did not end")
	}
	require.ErrorIs(t, c.SendIQ(context.Background(), result("C")), stream.ErrClosed)
	w.waitEOF(t)
}

// TestBugTLSCloseWaitedOutACutWrite: a write on a *tls.Conn, never cut
// short now, must not outlive the stream: on a peer that never reads
// again, the senders return at their deadlines, and Close ends the write
// still under way (closing the transport under it: crypto/tls's Close does
// so when a Write is in flight) and everything else, leaving no goroutine
// behind. Before, the write was cut short, and Close then wrote TLS's
// close_notify on the stalled transport, which took crypto/tls's own 5 s
// deadline.
func TestBugTLSCloseWaitedOutACutWrite(t *testing.T) {
	leakCheck(t)
	client, under, _ := tlsPair(t, false)
	c := stream.New(client)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	aDone := sendIQ(c, ctx, result("A"))
	waitWrite(t, under)
	bDone := sendIQ(c, ctx, result("B"))
	require.ErrorIs(t, recvErr(t, aDone, waitLong), context.DeadlineExceeded)
	require.ErrorIs(t, recvErr(t, bDone, waitLong), context.DeadlineExceeded)

	start := time.Now()
	require.NoError(t, c.Close())
	select {
	case <-c.Done():
	case <-time.After(waitLong):
		t.Fatal("the stream did not end")
	}
	assert.Less(t, time.Since(start), waitLong)
	require.ErrorIs(t, c.SendIQ(context.Background(), result("C")), stream.ErrClosed)
}

// TestBugTLSRequestTimeoutFailedTheNextRequests: a Caller's requests over
// TLS to a peer that stopped reading must fail at their deadlines with
// ErrTimeout, as over any net.Conn (their contexts are the Caller's own,
// watched without a timer of the stream's); the stream stays open, and
// once the peer reads again the request whose write had begun arrives
// whole and the stream is usable. Before, the first request's write was
// cut short at its deadline, which broke the TLS state: every later
// request failed at once with "not sent: i/o timeout".
func TestBugTLSRequestTimeoutFailedTheNextRequests(t *testing.T) {
	leakCheck(t)
	const wait = 150 * time.Millisecond
	client, _, server := tlsPair(t, false)
	conn := stream.New(client)
	ep := iq.NewEndpoint(conn, iq.WithTimeout(wait))
	served := make(chan error, 1)
	go func() { served <- conn.Serve(context.Background(), ep, nil) }()
	t.Cleanup(func() {
		_ = conn.Close()
		<-served
	})

	for i := range 3 {
		start := time.Now()
		_, err := ep.Caller.Get(context.Background(), "peer.example", iq.NewElement(hNS, "q"))
		assert.ErrorIs(t, err, iq.ErrTimeout, "request %d", i)
		assert.NotErrorIs(t, err, iq.ErrClosed, "request %d", i)
		assert.Less(t, time.Since(start), wait+time.Second, "request %d", i)
	}
	require.Nil(t, conn.Err(), "the stream goes on")

	w := newWire(server, iq.NSClient)
	first := w.next(t)
	assert.Equal(t, "iq", first.Name.Local, "the request whose write began arrives whole")
	require.NoError(t, conn.SendIQ(context.Background(), result("D")))
	for w.nextIQ(t).ID != "D" {
		// a request written whole before D
	}
	require.Nil(t, conn.Err())
}
