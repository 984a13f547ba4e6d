package stream_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// TestBugUnwritableReplyIsReplacedOnTheStream: a handler result that the
// writer refuses made Conn.SendIQ fail, and the peer never got an answer.
// Conn.SendIQ's error wraps iq.ErrEncode, and the Callee sends
// cancel/internal-server-error in its place; the stream stays up.
func TestBugUnwritableReplyIsReplacedOnTheStream(t *testing.T) {
	leakCheck(t)
	cases := []struct {
		name    string
		payload *iq.Element
		err     error
	}{
		{name: "payload name", payload: iq.NewElement(hNS, "bad name")},
		{name: "attribute name", payload: iq.NewElement(hNS, "bad", "a b", "v")},
		{name: "StanzaError App", err: &iq.StanzaError{Type: iq.Cancel, Condition: iq.Conflict, App: iq.NewElement("urn:test:app", "x y")}},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, rigOpts{register: func(ep *iq.Endpoint) {
				ep.Callee.Get(hNS, "bad", func(context.Context, *iq.IQ) (*iq.Element, error) { return tt.payload, tt.err })
			}})
			r.send(t, `<iq type='get' id='b1' from='peer@example.com/x'><bad xmlns='`+hNS+`'/></iq>`)
			reply := r.wire.nextIQ(t)
			assert.Equal(t, "b1", reply.ID)
			assert.Equal(t, "peer@example.com/x", reply.To)
			require.Equal(t, iq.TypeError, reply.Type, "%s", reply)
			require.NotNil(t, reply.Error)
			assert.Equal(t, iq.InternalServerError, reply.Error.Condition)
			// The stream is still usable.
			r.send(t, `<iq type='get' id='b2'><echo xmlns='`+hNS+`'>hi</echo></iq>`)
			assert.Equal(t, "b2", r.wire.nextIQ(t).ID)
		})
	}
}

// TestBugSendIQEncodeErrorWrapsErrEncode: the Callee can only tell an
// unwritable reply from a broken stream by ErrEncode, so Conn.SendIQ must
// pass it through, and write nothing.
func TestBugSendIQEncodeErrorWrapsErrEncode(t *testing.T) {
	leakCheck(t)
	r := newRig(t, rigOpts{})
	err := r.conn.SendIQ(context.Background(), &iq.IQ{Type: iq.TypeResult, ID: "x", Payload: iq.NewElement(hNS, "a b")})
	require.Error(t, err)
	assert.True(t, errors.Is(err, iq.ErrEncode), "%v", err)
	assert.NotErrorIs(t, err, iq.ErrClosed)
	r.quiesce(t)
	assert.NotContains(t, r.wire.Raw(), "a b")
}

// dropCounter counts the replies a Callee could not send.
type dropCounter struct {
	iq.Metrics
	dropped atomic.Int64
}

func (d *dropCounter) DroppedReply()    { d.dropped.Add(1) }
func (d *dropCounter) SpoofedResponse() {}

// TestBugWritesToAPeerThatStoppedReadingEnd: a request made with
// context.Background() gave Conn.SendIQ a context without a deadline, so
// its write to a peer that stopped reading blocked forever, long past the
// Caller's WithTimeout; the Callee's replies too, with WithoutCancel. Over
// net.Pipe with a peer that never reads, the request now fails with
// ErrTimeout at its deadline, and a reply is given up after the reply
// timeout, each leaving the stream usable.
func TestBugWritesToAPeerThatStoppedReadingEnd(t *testing.T) {
	leakCheck(t)
	const wait = 150 * time.Millisecond
	p1, p2 := net.Pipe()
	conn := stream.New(p1)
	m := new(dropCounter)
	ep := iq.NewEndpoint(conn, iq.WithTimeout(wait), iq.WithReplyTimeout(wait), iq.WithMetrics(m))
	ep.Callee.Get(hNS, "echo", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		return iq.NewElement(hNS, "echo"), nil
	})
	served := make(chan error, 1)
	go func() { served <- conn.Serve(context.Background(), ep, nil) }()
	t.Cleanup(func() {
		_ = p2.Close()
		_ = conn.Close()
		<-served
	})

	// Our request: its write blocks, the peer reading nothing.
	for i := range 2 { // twice: the first left the stream usable
		start := time.Now()
		errc := make(chan error, 1)
		go func() {
			_, err := ep.Caller.Get(context.Background(), "peer.example", iq.NewElement(hNS, "q"))
			errc <- err
		}()
		select {
		case err := <-errc:
			assert.ErrorIs(t, err, iq.ErrTimeout, "request %d", i)
			assert.NotErrorIs(t, err, iq.ErrClosed, "request %d", i)
			assert.Less(t, time.Since(start), waitLong, "request %d", i)
		case <-time.After(waitLong):
			require.FailNow(t, "the request's write outlived its deadline")
		}
	}
	assert.Zero(t, ep.Caller.Pending())

	// The peer's request: our reply's write blocks in turn.
	require.NoError(t, p2.SetWriteDeadline(time.Now().Add(waitLong)))
	_, err := io.WriteString(p2, `<iq type='get' id='s1' from='peer@example.com/x'><echo xmlns='`+hNS+`'/></iq>`)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return m.dropped.Load() == 1 }, waitLong, time.Millisecond,
		"the reply's write outlived its reply timeout")
	require.Eventually(t, func() bool { return ep.Callee.InFlight() == 0 }, waitLong, time.Millisecond)
	select {
	case err := <-served:
		require.FailNow(t, "the stream ended", "%v", err)
	default:
	}
}
