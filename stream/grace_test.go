package stream_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// sleepHandler registers {hNS}sleep, which takes d (or until its context
// ends) and reports on done how it ended: nil after d, else its context's
// error.
func sleepHandler(d time.Duration, done chan error) func(ep *iq.Endpoint) {
	return func(ep *iq.Endpoint) {
		ep.Callee.Get(hNS, "sleep", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
			select {
			case <-time.After(d):
				done <- nil
				return iq.NewElement(hNS, "slept"), nil
			case <-ctx.Done():
				done <- ctx.Err()
				return nil, ctx.Err()
			}
		})
	}
}

const getThenClose = `<iq type='get' id='g1' from='peer@example.org/r'><sleep xmlns='` + hNS + `'/></iq></stream:stream>`

// TestBugPeerCloseRightAfterGetLosesReply: the peer's </stream:stream>
// right after a get ended our stream at once, and the reply was never
// sent. RFC 6120 §4.4 lets us finish what is in flight: the reply goes
// out, then our closing tag.
func TestBugPeerCloseRightAfterGetLosesReply(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []stream.Option
	}{
		{"default grace", nil},
		{"a grace of its own", []stream.Option{stream.WithCloseGrace(time.Second)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			done := make(chan error, 1)
			r := newRig(t, rigOpts{opts: tc.opts, register: sleepHandler(100*time.Millisecond, done)})
			r.send(t, getThenClose)

			reply := r.wire.nextIQ(t)
			assert.Equal(t, "g1", reply.ID)
			assert.Equal(t, iq.TypeResult, reply.Type)
			assert.Equal(t, "peer@example.org/r", reply.To)
			require.NotNil(t, reply.Payload)
			assert.Equal(t, "slept", reply.Payload.Name.Local)

			require.NoError(t, r.served(t))
			raw := r.wire.waitEOF(t)
			assert.True(t, r.wire.sawEndTag(), "wrote %q", r.wire.tail())
			assert.True(t, strings.HasSuffix(raw, "</stream:stream>"), "our closing tag comes after the reply: %q", raw)
			assert.Equal(t, 1, strings.Count(raw, "</stream:stream>"))
			assert.NoError(t, recvErr(t, done, waitLong), "the handler finished undisturbed")
			assert.ErrorIs(t, r.conn.SendIQ(context.Background(), &iq.IQ{ID: "late", Type: iq.TypeResult}), iq.ErrClosed)
		})
	}
}

// TestBugPeerCloseGraceBoundsSlowHandler: the wait for replies after the
// peer's closing tag is bounded: a handler slower than the grace does not
// hold the stream open; our closing tag follows the grace, the stream
// closes and the handler's context is cancelled.
func TestBugPeerCloseGraceBoundsSlowHandler(t *testing.T) {
	const grace = 150 * time.Millisecond
	leakCheck(t)
	done := make(chan error, 1)
	r := newRig(t, rigOpts{opts: []stream.Option{stream.WithCloseGrace(grace)}, register: sleepHandler(time.Minute, done)})
	start := time.Now()
	r.send(t, getThenClose)

	select {
	case <-r.wire.endTag:
	case <-time.After(waitLong):
		t.Fatalf("no closing tag within %v; read %q", waitLong, r.wire.tail())
	}
	elapsed := time.Since(start)
	assert.GreaterOrEqual(t, elapsed, grace, "the closing tag waits for the grace")
	assert.Less(t, elapsed, grace+2*time.Second, "and no longer")
	require.NoError(t, r.served(t))
	raw := r.wire.waitEOF(t)
	assert.NotContains(t, raw, "g1", "no reply was due yet")
	assert.ErrorIs(t, recvErr(t, done, waitLong), context.Canceled, "the handler's context ends with the stream")
}

// inGrace has the peer send getThenClose and returns once the Conn is in
// its close grace: when a request of ours, pending until then, has failed.
func inGrace(t *testing.T, r *rig) {
	t.Helper()
	pending := goRequest(r.ep, "p1", iq.NewElement(hNS, "never"))
	r.wire.nextIQ(t)
	r.send(t, getThenClose)
	require.ErrorIs(t, recvErr(t, pending, waitLong), iq.ErrClosed)
}

func TestCloseGrace(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"our pending requests fail at once", func(t *testing.T) {
			done := make(chan error, 1)
			r := newRig(t, rigOpts{opts: []stream.Option{stream.WithCloseGrace(waitLong)}, register: sleepHandler(time.Minute, done)})
			pending := goRequest(r.ep, "p1", iq.NewElement(hNS, "never"))
			r.wire.nextIQ(t)
			r.send(t, getThenClose)
			start := time.Now()
			err := recvErr(t, pending, waitLong)
			assert.ErrorIs(t, err, iq.ErrClosed)
			assert.Less(t, time.Since(start), time.Second, "no reply can follow the peer's closing tag")
			assert.False(t, r.wire.sawEndTag(), "the grace goes on")
			require.NoError(t, r.conn.Close())
			assert.ErrorIs(t, recvErr(t, done, waitLong), context.Canceled)
		}},
		{"Close cuts the grace short", func(t *testing.T) {
			done := make(chan error, 1)
			r := newRig(t, rigOpts{opts: []stream.Option{stream.WithCloseGrace(time.Minute)}, register: sleepHandler(time.Minute, done)})
			inGrace(t, r)
			start := time.Now()
			require.NoError(t, r.conn.Close())
			require.NoError(t, r.served(t))
			assert.Less(t, time.Since(start), 2*time.Second)
			r.wire.waitEOF(t)
			assert.True(t, r.wire.sawEndTag())
			assert.ErrorIs(t, recvErr(t, done, waitLong), context.Canceled)
		}},
		{"Serve's context cuts the grace short", func(t *testing.T) {
			done := make(chan error, 1)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := newRig(t, rigOpts{ctx: ctx, opts: []stream.Option{stream.WithCloseGrace(time.Minute)}, register: sleepHandler(time.Minute, done)})
			inGrace(t, r)
			start := time.Now()
			cancel()
			assert.ErrorIs(t, r.served(t), context.Canceled)
			assert.Less(t, time.Since(start), 2*time.Second)
			r.wire.waitEOF(t)
			assert.ErrorIs(t, recvErr(t, done, waitLong), context.Canceled)
		}},
		{"a grace of 0 closes at once", func(t *testing.T) {
			done := make(chan error, 1)
			r := newRig(t, rigOpts{opts: []stream.Option{stream.WithCloseGrace(0)}, register: sleepHandler(time.Minute, done)})
			r.send(t, getThenClose)
			require.NoError(t, r.served(t))
			raw := r.wire.waitEOF(t)
			assert.True(t, r.wire.sawEndTag())
			assert.NotContains(t, raw, "g1")
			assert.ErrorIs(t, recvErr(t, done, waitLong), context.Canceled)
		}},
		{"nothing in flight closes at once", func(t *testing.T) {
			r := newRig(t, rigOpts{opts: []stream.Option{stream.WithCloseGrace(time.Minute)}})
			r.send(t, `<iq type='get' id='e' from='peer@example.org/r'><echo xmlns='`+hNS+`'>x</echo></iq>`)
			assert.Equal(t, "e", r.wire.nextIQ(t).ID)
			start := time.Now()
			r.send(t, `</stream:stream>`)
			require.NoError(t, r.served(t))
			assert.Less(t, time.Since(start), 2*time.Second)
			r.wire.waitEOF(t)
			assert.True(t, r.wire.sawEndTag())
		}},
		{"several requests, each answered before the closing tag", func(t *testing.T) {
			done := make(chan error, 3)
			r := newRig(t, rigOpts{register: sleepHandler(50*time.Millisecond, done)})
			var in string
			for _, id := range []string{"a", "b", "c"} {
				in += `<iq type='get' id='` + id + `' from='peer@example.org/r'><sleep xmlns='` + hNS + `'/></iq>`
			}
			r.send(t, in+`<iq type='get' id='bad'/></stream:stream>`)
			ids := map[string]iq.Type{}
			for range 4 {
				reply := r.wire.nextIQ(t)
				ids[reply.ID] = reply.Type
			}
			assert.Equal(t, map[string]iq.Type{"a": iq.TypeResult, "b": iq.TypeResult, "c": iq.TypeResult, "bad": iq.TypeError}, ids)
			require.NoError(t, r.served(t))
			raw := r.wire.waitEOF(t)
			assert.True(t, strings.HasSuffix(raw, "</stream:stream>"), "wrote %q", raw)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			tc.run(t)
		})
	}
}

func TestWithCloseGrace_NegativePanics(t *testing.T) {
	assert.PanicsWithValue(t, "stream: WithCloseGrace(-1s): negative grace", func() { stream.WithCloseGrace(-time.Second) })
}
