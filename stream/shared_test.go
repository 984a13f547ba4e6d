package stream_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// forwarder is the Sender of an Endpoint served by one stream after
// another: it forwards to the stream of the moment with iq.SendVia.
type forwarder struct {
	mu   sync.Mutex
	conn *stream.Conn
}

func (f *forwarder) set(c *stream.Conn) {
	f.mu.Lock()
	f.conn = c
	f.mu.Unlock()
}

func (f *forwarder) SendIQ(ctx context.Context, i *iq.IQ) error {
	f.mu.Lock()
	c := f.conn
	f.mu.Unlock()
	return iq.SendVia(ctx, c, i)
}

// sharedStream is one stream serving a shared Endpoint, with its peer end.
type sharedStream struct {
	conn *stream.Conn
	peer net.Conn
	wire *wire
	errc chan error
}

func serveShared(t *testing.T, ep *iq.Endpoint, f *forwarder) *sharedStream {
	t.Helper()
	p1, p2 := net.Pipe()
	s := &sharedStream{conn: stream.New(p1), peer: p2, wire: newWire(p2, iq.NSClient), errc: make(chan error, 1)}
	f.set(s.conn)
	go func() { s.errc <- s.conn.ServeShared(context.Background(), ep, nil) }()
	t.Cleanup(func() {
		_ = s.conn.Close()
		_ = s.peer.Close()
		<-s.errc
		<-s.wire.eof
	})
	return s
}

func (s *sharedStream) write(t *testing.T, x string) {
	t.Helper()
	_ = s.peer.SetWriteDeadline(time.Now().Add(waitLong))
	_, err := io.WriteString(s.peer, x)
	require.NoError(t, err)
	_ = s.peer.SetWriteDeadline(time.Time{})
}

// TestBugEndpointDiesWithItsStream: a stream that ended closed its
// Endpoint for good, so a program that reconnects had to build its
// handlers again. Under ServeShared the requests sent on the stream fail
// at once with ErrConnectionLost, and the next stream serves the same
// Endpoint: its handlers answer, its Caller takes new requests.
func TestBugEndpointDiesWithItsStream(t *testing.T) {
	leakCheck(t)
	for _, tc := range []struct {
		name  string
		end   func(t *testing.T, s *sharedStream)
		cause error // what the lost request's error wraps besides ErrConnectionLost
	}{
		{"transport drops", func(t *testing.T, s *sharedStream) { _ = s.peer.Close() }, nil},
		{"peer closes its stream", func(t *testing.T, s *sharedStream) { s.write(t, "</stream:stream>") }, io.EOF},
		{"we close", func(t *testing.T, s *sharedStream) { _ = s.conn.Close() }, stream.ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &forwarder{}
			ep := iq.NewEndpoint(f, iq.WithTimeout(time.Minute), iq.WithLocalJID("me@example.com/r"))
			defer ep.Close()
			ep.Callee.Get(hNS, "echo", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
				return iq.NewElement(hNS, "echo").AppendText(req.Payload.Text()), nil
			})

			first := serveShared(t, ep, f)
			lost := goRequest(ep, "lost", iq.NewElement(hNS, "q"))
			require.Equal(t, "lost", first.wire.nextIQ(t).ID)
			start := time.Now()
			tc.end(t, first)
			err := recvErr(t, lost, waitLong)
			assert.Less(t, time.Since(start), time.Second, "the lost request failed late")
			assert.ErrorIs(t, err, iq.ErrConnectionLost)
			assert.ErrorIs(t, err, iq.ErrClosed)
			if tc.cause != nil {
				assert.ErrorIs(t, err, tc.cause)
			}
			assert.Contains(t, err.Error(), "iq: request lost: connection lost")
			select {
			case err := <-first.errc:
				first.errc <- err // for the cleanup
			case <-time.After(waitLong):
				t.Fatal("ServeShared did not return")
			}

			second := serveShared(t, ep, f)
			// Our request goes out on the new stream and is answered.
			done := goRequest(ep, "next", iq.NewElement(hNS, "q"))
			require.Equal(t, "next", second.wire.nextIQ(t).ID)
			second.write(t, `<iq type="result" id="next"/>`)
			assert.NoError(t, recvErr(t, done, waitLong))
			// The handler registered once answers on the new stream.
			second.write(t, `<iq type="get" id="in" from="you@example.com/r"><echo xmlns="`+hNS+`">hi</echo></iq>`)
			reply := second.wire.nextIQ(t)
			assert.Equal(t, iq.TypeResult, reply.Type)
			assert.Equal(t, "in", reply.ID)
			assert.Equal(t, 0, ep.Caller.Pending())
		})
	}
}

// TestServeSharedFailsOnlyItsOwnRequests: two streams serve one Endpoint
// at once; the end of one fails the requests sent on it and no other.
func TestServeSharedFailsOnlyItsOwnRequests(t *testing.T) {
	leakCheck(t)
	f := &forwarder{}
	ep := iq.NewEndpoint(f, iq.WithTimeout(time.Minute))
	defer ep.Close()
	a := serveShared(t, ep, f)
	onA := goRequest(ep, "a", iq.NewElement(hNS, "q"))
	require.Equal(t, "a", a.wire.nextIQ(t).ID)
	b := serveShared(t, ep, f)
	onB := goRequest(ep, "b", iq.NewElement(hNS, "q"))
	require.Equal(t, "b", b.wire.nextIQ(t).ID)

	_ = a.peer.Close()
	assert.ErrorIs(t, recvErr(t, onA, waitLong), iq.ErrConnectionLost)
	select {
	case err := <-onB:
		t.Fatalf("the request on the live stream ended: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	b.write(t, `<iq type="result" id="b"/>`)
	assert.NoError(t, recvErr(t, onB, waitLong))
}

// TestServeKeepsClosingItsEndpoint: Serve, for a single stream, still
// closes the Endpoint when the stream ends.
func TestServeKeepsClosingItsEndpoint(t *testing.T) {
	leakCheck(t)
	p1, p2 := net.Pipe()
	conn := stream.New(p1)
	ep := iq.NewEndpoint(conn)
	w := newWire(p2, iq.NSClient)
	errc := make(chan error, 1)
	go func() { errc <- conn.Serve(context.Background(), ep, nil) }()
	_ = p2.Close()
	<-errc
	<-w.eof
	_, err := ep.Caller.Request(context.Background(), &iq.IQ{Type: iq.TypeGet, Payload: iq.NewElement(hNS, "q")})
	assert.ErrorIs(t, err, iq.ErrClosed)
	assert.False(t, errors.Is(err, iq.ErrConnectionLost), "a closed Caller's error says the connection was lost: %v", err)
}
