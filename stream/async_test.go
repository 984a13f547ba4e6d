package stream_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// notifier records the verdicts an AsyncSender tells it.
type notifier struct{ told chan error }

func newNotifier() *notifier { return &notifier{told: make(chan error, 4)} }

func (n *notifier) Sent(err error) { n.told <- err }

// verdict waits for n's one verdict.
func (n *notifier) verdict(t *testing.T) error {
	t.Helper()
	return recvErr(t, n.told, waitLong)
}

// untold checks that n has been told nothing (more).
func (n *notifier) untold(t *testing.T, why string) {
	t.Helper()
	select {
	case err := <-n.told:
		t.Fatalf("told %v: %s", err, why)
	default:
	}
}

// sendAsync calls c.SendIQAsync for result(id), which must queue.
func sendAsync(t *testing.T, c *stream.Conn, ctx context.Context, id string) *notifier {
	t.Helper()
	n := newNotifier()
	queued, err := c.SendIQAsync(ctx, result(id), n)
	require.NoError(t, err)
	require.True(t, queued, "a write is under way: %s queues", id)
	return n
}

var _ iq.AsyncSender = (*stream.Conn)(nil)

// On an idle stream SendIQAsync writes at once and returns the verdict
// itself: the notifier is never told.
func TestSendIQAsync_IdleStreamWritesAtOnce(t *testing.T) {
	leakCheck(t)
	a, b := net.Pipe()
	c := stream.New(a)
	w := newWire(b, iq.NSClient)
	n := newNotifier()
	queued, err := c.SendIQAsync(context.Background(), result("x1"), n)
	require.NoError(t, err)
	assert.False(t, queued)
	assert.Equal(t, "x1", w.nextIQ(t).ID)
	closeConn(t, c, w)
	n.untold(t, "a stanza written before SendIQAsync returned has no later verdict")
}

// Behind a write under way SendIQAsync returns at once; each notifier is
// told nil exactly once, when its stanza has been written, and the
// stanzas leave in the order they queued, among those of waiting senders.
func TestSendIQAsync_QueuedStanzasAreToldOnceWritten(t *testing.T) {
	leakCheck(t)
	c, _, peer, aDone := stalled(t)
	var want []string
	var notes []*notifier
	var syncs []chan error
	for i := range 6 {
		id := fmt.Sprint("q", i)
		want = append(want, id)
		if i%3 == 1 { // a sender that waits, among them
			syncs = append(syncs, sendRaw(c, context.Background(), mustIQ(t, result(id))))
		} else {
			notes = append(notes, sendAsync(t, c, context.Background(), id))
		}
		waitQueue(t, c, i+1)
	}
	for _, n := range notes {
		n.untold(t, "the peer has read nothing yet")
	}
	w := newWire(peer, iq.NSClient)
	require.NoError(t, recvErr(t, aDone, waitLong))
	for _, errc := range syncs {
		require.NoError(t, recvErr(t, errc, waitLong))
	}
	for i, n := range notes {
		require.NoError(t, n.verdict(t), "async stanza %d", i)
	}
	assert.Equal(t, "A", w.nextIQ(t).ID)
	assert.Equal(t, want, ids(t, w, len(want)), "in the order they queued")
	closeConn(t, c, w)
	for _, n := range notes {
		n.untold(t, "one verdict per stanza")
	}
}

// What SendIQ refuses at once, SendIQAsync refuses at once too, with the
// same error, whether or not a write is under way; nothing is written and
// no notifier is told.
func TestSendIQAsync_RefusalsAreReturned(t *testing.T) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	bad := result("bad")
	bad.Payload = iq.NewElement(hNS, "not a name")
	tests := []struct {
		name    string
		opts    []stream.Option
		ctx     context.Context
		iq      *iq.IQ
		closed  bool
		wantErr error
	}{
		{name: "context done", ctx: done, iq: result("x"), wantErr: context.Canceled},
		{name: "does not encode", ctx: context.Background(), iq: bad, wantErr: iq.ErrEncode},
		{name: "stream closed", ctx: context.Background(), iq: result("x"), closed: true, wantErr: stream.ErrClosed},
		{
			name: "from outside the stream's domain", opts: []stream.Option{stream.WithLocalAddress("comp.example")},
			ctx: context.Background(), iq: &iq.IQ{ID: "x", Type: iq.TypeResult, From: "other.example"}, wantErr: iq.ErrInvalid,
		},
	}
	for _, tt := range tests {
		for _, busy := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/busy=%v", tt.name, busy), func(t *testing.T) {
				leakCheck(t)
				tr, peer := newSignalPipe()
				c := stream.New(tr, tt.opts...)
				var aDone chan error
				if busy {
					aDone = sendRaw(c, context.Background(), rawIQ("A"))
					<-tr.entered
				}
				w := newWire(peer, iq.NSClient)
				if tt.closed {
					if busy {
						require.NoError(t, recvErr(t, aDone, waitLong))
					}
					closeConn(t, c, w)
				}
				n := newNotifier()
				queued, err := c.SendIQAsync(tt.ctx, tt.iq, n)
				require.ErrorIs(t, err, tt.wantErr)
				assert.False(t, queued)
				if !tt.closed {
					if busy {
						require.NoError(t, recvErr(t, aDone, waitLong))
						assert.Equal(t, "A", w.nextIQ(t).ID)
					}
					raw := closeConn(t, c, w)
					assert.NotContains(t, raw, `id="x"`)
					assert.NotContains(t, raw, `id="bad"`)
				}
				n.untold(t, "a refusal is returned, not told")
			})
		}
	}
}

// A queued stanza whose deadline passes before its write begins is never
// written: its notifier is told DeadlineExceeded, and the stream goes on.
func TestSendIQAsync_DeadlinePassesWhileQueued(t *testing.T) {
	leakCheck(t)
	c, _, peer, aDone := stalled(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	x := sendAsync(t, c, ctx, "x")
	bDone := sendRaw(c, context.Background(), rawIQ("B"))
	waitQueue(t, c, 2)
	<-ctx.Done()
	w := newWire(peer, iq.NSClient)
	require.NoError(t, recvErr(t, aDone, waitLong))
	require.ErrorIs(t, x.verdict(t), context.DeadlineExceeded)
	require.NoError(t, recvErr(t, bDone, waitLong))
	assert.Equal(t, []string{"A", "B"}, ids(t, w, 2))
	assert.Nil(t, c.Err(), "the stream goes on")
	raw := closeConn(t, c, w)
	assert.NotContains(t, raw, `id="x"`)
}

// A stanza still queued when the stream closes is told an error wrapping
// ErrClosed, as a waiting sender is.
func TestSendIQAsync_StreamClosesWhileQueued(t *testing.T) {
	leakCheck(t)
	c, _, peer, aDone := stalled(t)
	x := sendAsync(t, c, context.Background(), "x")
	waitQueue(t, c, 1)
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }() // the peer reads nothing yet
	require.ErrorIs(t, x.verdict(t), stream.ErrClosed)
	w := newWire(peer, iq.NSClient)
	<-aDone
	<-closed
	<-w.eof
	assert.NotContains(t, w.raw.String(), `id="x"`)
	x.untold(t, "one verdict")
}

// behindLeaderWithoutDeadline makes a Conn whose write of A is stuck
// (see stalled), with B, a sender without a deadline, queued behind it,
// and returns a context that ends 200 ms from now for the stanza to queue
// next: once the peer reads A, B leads a batch with it.
func behindLeaderWithoutDeadline(t *testing.T) (c *stream.Conn, peer net.Conn, aDone, bDone chan error, ctx context.Context) {
	t.Helper()
	c, _, peer, aDone = stalled(t)
	bDone = sendRaw(c, context.Background(), rawIQ("B"))
	waitQueue(t, c, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	t.Cleanup(cancel)
	return c, peer, aDone, bDone, ctx
}

// Regression: a queued stanza has no sender waiting to cut a stuck write
// short when its deadline passes, as a waiting sender does. A batch it
// joined, led by a sender without a deadline, to a peer that reads
// nothing, is cut at its deadline: it is told DeadlineExceeded on time,
// the leader's stanza, not begun, goes out once the peer reads, and the
// stream goes on.
func TestBugAsyncStanzaBehindAStuckWriteOutlivedItsDeadline(t *testing.T) {
	leakCheck(t)
	c, peer, aDone, bDone, ctx := behindLeaderWithoutDeadline(t)
	x := sendAsync(t, c, ctx, "x")
	waitQueue(t, c, 2)
	// The peer reads A only: B then leads the batch B, x, which nobody reads.
	var seen bytes.Buffer
	seen.Write(readN(t, peer, len(rawIQ("A"))))
	require.NoError(t, recvErr(t, aDone, waitLong))
	start := time.Now()
	require.ErrorIs(t, x.verdict(t), context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 2*time.Second, "told at its deadline, not when the peer reads")
	select {
	case err := <-bDone:
		t.Fatalf("B returned (%v) while the peer reads nothing", err)
	default:
	}
	w := newWire(io.MultiReader(&seen, peer), iq.NSClient)
	require.NoError(t, recvErr(t, bDone, waitLong))
	assert.Equal(t, []string{"A", "B"}, ids(t, w, 2))
	assert.Nil(t, c.Err(), "the stream goes on")
	raw := closeConn(t, c, w)
	assert.NotContains(t, raw, `id="x"`)
}

// mustIQ is i encoded.
func mustIQ(t *testing.T, i *iq.IQ) []byte {
	t.Helper()
	b, err := i.AppendXML(nil)
	require.NoError(t, err)
	return b
}

// Regression: a queued stanza was told nothing at its deadline while the
// write ahead of it could not be cut short (a transport that a cut write
// breaks, or the rest of a stanza cut short being finished) and the peer
// read nothing: only when the peer read, if ever.
func TestBugAsyncStanzaNotToldAtItsDeadlineBehindAWriteNothingCuts(t *testing.T) {
	tests := []struct {
		name string
		opts []stream.Option
		// cut: the write ahead is a big stanza whose deadline cuts it
		// after the peer read part of it, and whose rest is being
		// finished in the background
		cut bool
	}{
		{name: "writes never cut", opts: []stream.Option{stream.WithWritesNeverCut()}},
		{name: "rest of a stanza cut short", cut: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			tr, peer := newSignalPipe()
			c := stream.New(tr, tt.opts...)
			big := mustIQ(t, result(strings.Repeat("b", 8<<10)))
			sctx, cancelS := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancelS()
			sDone := sendRaw(c, sctx, big)
			<-tr.entered
			var seen bytes.Buffer
			if tt.cut {
				seen.Write(readN(t, peer, 100))
			}
			require.ErrorIs(t, recvErr(t, sDone, waitLong), context.DeadlineExceeded, "S gives up at its deadline")
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			x := sendAsync(t, c, ctx, "x")
			require.ErrorIs(t, x.verdict(t), context.DeadlineExceeded)
			assert.Less(t, time.Since(start), 2*time.Second, "told at its deadline, not when the peer reads")

			w := newWire(io.MultiReader(&seen, peer), iq.NSClient)
			raw := closeConn(t, c, w)
			assert.NotContains(t, raw, `id="x"`)
			x.untold(t, "one verdict")
		})
	}
}

// Regression, as a Callee saw it: on a stream whose writes are never cut,
// a reply queued behind a stuck write kept its handler's slot past the
// reply timeout, and Drain waited for the peer to read.
func TestBugQueuedReplyHeldItsSlotPastTheReplyTimeout(t *testing.T) {
	leakCheck(t)
	tr, peer := newSignalPipe()
	c := stream.New(tr, stream.WithWritesNeverCut())
	callee := iq.NewCallee(c, iq.WithReplyTimeout(300*time.Millisecond))
	defer callee.Close()
	callee.Get(hNS, "q", func(_ context.Context, req *iq.IQ) (*iq.Element, error) { return req.Payload, nil })
	sDone := sendRaw(c, context.Background(), mustIQ(t, result(strings.Repeat("b", 8<<10))))
	<-tr.entered
	callee.Receive(context.Background(), &iq.IQ{ID: "r1", Type: iq.TypeGet, Payload: iq.NewElement(hNS, "q")})
	require.Eventually(t, func() bool { return callee.InFlight() == 0 }, 2*time.Second, 5*time.Millisecond,
		"the slot is given back at the reply timeout")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	require.NoError(t, callee.Drain(ctx))

	w := newWire(peer, iq.NSClient)
	require.NoError(t, recvErr(t, sDone, waitLong))
	raw := closeConn(t, c, w)
	assert.NotContains(t, raw, `id="r1"`, "a reply dropped at its timeout is never written")
}

// closingNotifier closes its Conn when told an error.
type closingNotifier struct {
	c    *stream.Conn
	told chan error
}

func (n *closingNotifier) Sent(err error) {
	if err != nil {
		_ = n.c.Close()
	}
	n.told <- err
}

// Regression: the verdicts of the stanzas queued when the stream ended
// were told inside its ending, so a notifier that closed the stream (a
// Caller's hook, say) waited for itself, and Close never returned.
func TestBugNotifierThatClosedTheStreamDeadlocked(t *testing.T) {
	leakCheck(t)
	c, _, peer, aDone := stalled(t)
	n := &closingNotifier{c: c, told: make(chan error, 1)}
	queued, err := c.SendIQAsync(context.Background(), result("x"), n)
	require.NoError(t, err)
	require.True(t, queued)
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	require.ErrorIs(t, recvErr(t, n.told, waitLong), stream.ErrClosed)
	w := newWire(peer, iq.NSClient)
	recvErr(t, closed, waitLong)
	<-aDone
	<-w.eof
}

// writingNotifier writes a stanza of its own on its Conn when told.
type writingNotifier struct {
	c          *stream.Conn
	told, sent chan error
}

func (n *writingNotifier) Sent(err error) {
	n.told <- err
	n.sent <- n.c.SendRaw(context.Background(), rawIQ("N"))
}

// Regression: at a queued stanza's deadline, with its batch's write stuck,
// the sweep told the stanza's notifier before it cut the write; a
// notifier that wrote on the Conn then waited for the lock that write
// held, the cut never came, and the stanza told DeadlineExceeded was
// written once the peer read.
func TestBugSweepToldBeforeItCut(t *testing.T) {
	leakCheck(t)
	c, peer, aDone, bDone, ctx := behindLeaderWithoutDeadline(t)
	n := &writingNotifier{c: c, told: make(chan error, 1), sent: make(chan error, 1)}
	queued, err := c.SendIQAsync(ctx, result("x"), n)
	require.NoError(t, err)
	require.True(t, queued)
	waitQueue(t, c, 2)
	// The peer reads A only: B leads the batch B, x, which nobody reads.
	var seen bytes.Buffer
	seen.Write(readN(t, peer, len(rawIQ("A"))))
	require.NoError(t, recvErr(t, aDone, waitLong))
	require.ErrorIs(t, recvErr(t, n.told, waitLong), context.DeadlineExceeded)
	time.Sleep(300 * time.Millisecond) // the cut, had it been left to after the notifier
	w := newWire(io.MultiReader(&seen, peer), iq.NSClient)
	require.NoError(t, recvErr(t, bDone, waitLong))
	require.NoError(t, recvErr(t, n.sent, waitLong))
	assert.Equal(t, []string{"A", "B", "N"}, ids(t, w, 3))
	assert.NotContains(t, closeConn(t, c, w), `id="x"`, "x, told DeadlineExceeded, is never written")
}
