package stream_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// timedClosingNotifier closes its Conn when told, and reports how long
// Close took.
type timedClosingNotifier struct {
	c       *stream.Conn
	entered chan error
	told    chan error
	took    chan time.Duration
}

func (n *timedClosingNotifier) Sent(err error) {
	n.entered <- err
	start := time.Now()
	_ = n.c.Close()
	n.took <- time.Since(start)
	n.told <- err
}

// Regression: when a batch's write was cut before its leader's stanza
// began (another stanza's context ended), the leader's stanza went back to
// the head of the queue and the lock was handed to it, that is to the
// leader's own goroutine, which then told the batch's notifiers before
// going on to lead again: a notifier that closed the stream (which the
// AsyncSender contract allows) waited for the lock its own goroutine held,
// for closeWriteWait, and the stream ended without its closing tag,
// although the peer was reading. (One that wrote on the Conn waited for
// good.)
func TestBugNotifierRanOnTheGoroutineHandedTheWriteLock(t *testing.T) {
	leakCheck(t)
	c, tr, peer, aDone := stalled(t)
	bDone, cDone, cctx, cancel := queueBThenC(t, c)
	defer cancel()
	n := &timedClosingNotifier{c: c, entered: make(chan error, 1), told: make(chan error, 1), took: make(chan time.Duration, 1)}
	queued, err := c.SendIQAsync(cctx, result("y"), n)
	require.NoError(t, err)
	require.True(t, queued)
	waitQueue(t, c, 3)

	// The peer reads A only: B leads the batch B, C, y, which nobody reads.
	var seen bytes.Buffer
	seen.Write(readN(t, peer, len(rawIQ("A"))))
	require.NoError(t, recvErr(t, aDone, waitLong))
	select {
	case <-tr.entered: // the batch's Write
	case <-time.After(waitLong):
		t.Fatal("the batch's write did not start")
	}
	// C's and y's context ends: C's sender cuts the write before B began,
	// and y, not begun, is told Canceled. Once y's notifier runs, the
	// peer reads.
	cancel()
	require.ErrorIs(t, recvErr(t, cDone, waitLong), context.Canceled)
	require.ErrorIs(t, recvErr(t, n.entered, waitLong), context.Canceled)
	w := newWire(io.MultiReader(&seen, peer), iq.NSClient)
	require.ErrorIs(t, recvErr(t, n.told, waitLong), context.Canceled)
	var took time.Duration
	select {
	case took = <-n.took:
	default:
	}
	if errB := recvErr(t, bDone, waitLong); errB != nil {
		require.ErrorIs(t, errB, stream.ErrClosed, "B is written, or refused by the Close")
	}
	raw := w.waitEOF(t)
	assert.Less(t, took, 500*time.Millisecond, "Close, from the notifier, waited for nothing but its own goroutine")
	assert.True(t, w.sawEndTag(), "the peer reads, so the closing tag is written: %q", raw)
	assert.NotContains(t, raw, `id="y"`)
	assert.NotContains(t, raw, `id="C"`)
}

// Regression: a stanza whose sender gave up while it queued (its context
// ended: a waiting sender's, or one SendIQAsync queued, which the sweep
// ends) stayed in the queue's slice until the head reached it, counted
// nowhere: behind a write that nothing cuts (a peer that stopped reading,
// on a transport whose writes are never cut) the bound on queued stanzas
// held, but the queue grew by one entry, with its stanza's buffer and
// context, for every sender that gave up, without bound.
func TestBugAbandonedStanzasGrewTheQueueWithoutBound(t *testing.T) {
	leakCheck(t)
	tr, peer := newSignalPipe()
	c := stream.New(tr, stream.WithWritesNeverCut())
	aDone := sendRaw(c, context.Background(), rawIQ("A"))
	<-tr.entered
	const rounds, per = 10, 256
	for round := range rounds {
		ctx, cancel := context.WithCancel(context.Background())
		var errs []chan error
		var notes []*notifier
		for i := range per {
			if i%2 == 0 {
				errs = append(errs, sendRaw(c, ctx, rawIQ("w")))
			} else {
				n := newNotifier()
				queued, err := c.SendIQAsync(ctx, result("q"), n)
				require.NoError(t, err)
				require.True(t, queued)
				notes = append(notes, n)
			}
		}
		waitQueue(t, c, per)
		cancel()
		for _, errc := range errs {
			require.ErrorIs(t, recvErr(t, errc, waitLong), context.Canceled)
		}
		for _, n := range notes {
			require.ErrorIs(t, n.verdict(t), context.Canceled)
		}
		require.Equal(t, 0, stream.WriteQueueLen(c), "round %d", round)
	}
	assert.LessOrEqual(t, stream.WriteQueueSlots(c), 2*per,
		"%d senders gave up, none is queued", rounds*per)

	w := newWire(peer, iq.NSClient)
	require.NoError(t, recvErr(t, aDone, waitLong))
	assert.Equal(t, "A", w.nextIQ(t).ID)
	raw := closeConn(t, c, w)
	assert.NotContains(t, raw, `id="w"`)
	assert.NotContains(t, raw, `id="q"`)
}
