package stream_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
)

// slowHandler registers {hNS}slow, which takes d or until its context
// ends, and says which on cancelled.
func slowHandler(d time.Duration, cancelled chan<- error) func(*iq.Endpoint) {
	return func(ep *iq.Endpoint) {
		ep.Callee.Get(hNS, "slow", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
			select {
			case <-time.After(d):
				return iq.NewElement(hNS, "done"), nil
			case <-ctx.Done():
				if cancelled != nil {
					cancelled <- ctx.Err()
				}
				return nil, ctx.Err()
			}
		})
	}
}

func peerWrite(t *testing.T, nc net.Conn, s string) {
	t.Helper()
	_, err := nc.Write([]byte(s))
	require.NoError(t, err)
}

func nextEvent(t *testing.T, events <-chan peerEvent) peerEvent {
	t.Helper()
	for {
		select {
		case ev, ok := <-events:
			require.True(t, ok, "the peer's reading ended")
			require.NoError(t, ev.err)
			if ev.ws != "" {
				continue
			}
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("nothing more from the Conn")
		}
	}
}

// TestBugShutdownLosesRequestsInFlight: a program that stopped could only
// Close its stream, which cancelled the handlers of the requests it was
// serving and lost their replies. Shutdown lets all 200 slow handlers
// finish and send their replies, answers a request arriving meanwhile
// wait/resource-constraint, still delivers the reply to a request of our
// own, then writes the closing tag; Serve returns nil.
func TestBugShutdownLosesRequestsInFlight(t *testing.T) {
	leakCheck(t)
	const n = 200
	ours, peer := tcpPair(t)
	events := readPeer(peer)
	// The handlers wait for release, not for a time: under load a
	// 300 ms sleep could end before all 200 had started, and InFlight
	// never reached 200.
	release := make(chan struct{})
	var releaseOnce sync.Once
	let := func() { releaseOnce.Do(func() { close(release) }) }
	defer let() // a failure before the late get must not leave them waiting
	s := serveOn(t, ours, func(ep *iq.Endpoint) {
		ep.Callee.Get(hNS, "slow", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
			select {
			case <-release:
				return iq.NewElement(hNS, "done"), nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
	})

	var gets strings.Builder
	for i := range n {
		fmt.Fprintf(&gets, `<iq type='get' id='s%d' from='peer@example.org/x' to='me@example.org/r'><slow xmlns='%s'/></iq>`, i, hNS)
	}
	peerWrite(t, peer, gets.String())
	mine := make(chan error, 1)
	go func() {
		_, err := s.ep.Caller.Get(context.Background(), "peer@example.org/x", iq.NewElement(hNS, "mine"))
		mine <- err
	}()
	req := nextEvent(t, events)
	require.NotNil(t, req.iq)
	require.Equal(t, iq.TypeGet, req.iq.Type)
	require.Eventually(t, func() bool { return s.ep.Callee.InFlight() == n }, 5*time.Second, time.Millisecond)

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- s.conn.Shutdown(ctx, s.ep)
	}()
	time.Sleep(30 * time.Millisecond) // Shutdown has begun; the handlers have not returned
	peerWrite(t, peer, `<iq type='get' id='late' from='peer@example.org/x' to='me@example.org/r'><slow xmlns='`+hNS+`'/></iq>`)
	reply := req.iq.Result(nil)
	reply.From, reply.To = req.iq.To, req.iq.From
	b, err := reply.AppendXML(nil)
	require.NoError(t, err)
	peerWrite(t, peer, string(b))

	results := map[string]bool{}
	var late *iq.IQ
	for {
		ev := nextEvent(t, events)
		if ev.end {
			break
		}
		require.NotNil(t, ev.iq)
		switch {
		case ev.iq.ID == "late":
			late = ev.iq
			// Answered while all 200 still run: let them finish now.
			let()
		case ev.iq.Type == iq.TypeResult:
			assert.False(t, results[ev.iq.ID], "two replies to %s", ev.iq.ID)
			results[ev.iq.ID] = true
		default:
			t.Errorf("unexpected %s %s", ev.iq.Type, ev.iq.ID)
		}
	}
	assert.Len(t, results, n, "replies before the closing tag")
	if assert.NotNil(t, late, "no answer to the get that came during Shutdown") {
		assert.Equal(t, iq.TypeError, late.Type)
		require.NotNil(t, late.Error)
		assert.Equal(t, iq.Wait, late.Error.Type)
		assert.Equal(t, iq.ResourceConstraint, late.Error.Condition)
		assert.Equal(t, "peer@example.org/x", late.To)
	}
	select {
	case err := <-mine:
		assert.NoError(t, err, "our request answered during Shutdown")
	case <-time.After(5 * time.Second):
		t.Fatal("our request was not resolved")
	}

	peerWrite(t, peer, `</stream:stream>`)
	select {
	case err := <-shut:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the peer's closing tag")
	}
	select {
	case err := <-s.errc:
		assert.NoError(t, err, "Serve after Shutdown")
		s.errc <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
}

// TestShutdownContextEnds: a handler that never returns holds Shutdown
// up until its ctx ends; the stream is then closed at once, the handler's
// context ends, our pending requests fail with iq.ErrClosed, and Serve
// still returns nil.
func TestShutdownContextEnds(t *testing.T) {
	leakCheck(t)
	ours, peer := tcpPair(t)
	events := readPeer(peer)
	cancelled := make(chan error, 1)
	s := serveOn(t, ours, slowHandler(time.Hour, cancelled))
	peerWrite(t, peer, `<iq type='get' id='s' from='peer@example.org/x'><slow xmlns='`+hNS+`'/></iq>`)
	require.Eventually(t, func() bool { return s.ep.Callee.InFlight() == 1 }, 5*time.Second, time.Millisecond)
	mine := make(chan error, 1)
	go func() {
		_, err := s.ep.Caller.Get(context.Background(), "peer@example.org/x", iq.NewElement(hNS, "mine"))
		mine <- err
	}()
	require.NotNil(t, nextEvent(t, events).iq)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.conn.Shutdown(ctx, s.ep)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 2*time.Second)
	select {
	case err := <-s.errc:
		assert.NoError(t, err)
		s.errc <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	select {
	case err := <-cancelled:
		assert.Error(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the handler's context did not end")
	}
	select {
	case err := <-mine:
		assert.ErrorIs(t, err, iq.ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("our request did not fail")
	}
	assert.NoError(t, s.conn.Shutdown(context.Background(), s.ep), "Shutdown of an ended stream")
}
