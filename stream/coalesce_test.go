package stream_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// rawIQ is a result stanza whose id and text are id, in bytes known
// beforehand, so that a test can read exactly up to a stanza's end.
func rawIQ(id string) []byte {
	return []byte(`<iq type="result" id="` + id + `"><r xmlns="` + hNS + `">` + id + `</r></iq>`)
}

// sendRaw starts c.SendRaw(ctx, b) and returns where its result arrives.
func sendRaw(c *stream.Conn, ctx context.Context, b []byte) chan error {
	errc := make(chan error, 1)
	go func() { errc <- c.SendRaw(ctx, b) }()
	return errc
}

// waitQueue waits until n stanzas wait in c's write queue.
func waitQueue(t *testing.T, c *stream.Conn, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return stream.WriteQueueLen(c) == n }, waitLong, time.Millisecond,
		"want %d queued, have %d", n, stream.WriteQueueLen(c))
}

// stalled returns a Conn on a net.Pipe whose peer reads nothing yet, with
// a first stanza, A, whose write is under way (its Write entered) and
// holds the write lock; the peer end and A's result are returned too.
func stalled(t *testing.T) (c *stream.Conn, tr *signalConn, peer net.Conn, aDone chan error) {
	t.Helper()
	tr, peer = newSignalPipe()
	t.Cleanup(func() { peer.Close() })
	c = stream.New(tr)
	aDone = sendRaw(c, context.Background(), rawIQ("A"))
	select {
	case <-tr.entered:
	case <-time.After(waitLong):
		t.Fatal("A's write did not start")
	}
	return c, tr, peer, aDone
}

// queueBThenC queues B, then C with a context of its own, behind the
// write under way on c (see stalled), and returns their results, C's
// context and its cancel.
func queueBThenC(t *testing.T, c *stream.Conn) (bDone, cDone chan error, cctx context.Context, cancel context.CancelFunc) {
	t.Helper()
	bDone = sendRaw(c, context.Background(), rawIQ("B"))
	waitQueue(t, c, 1)
	cctx, cancel = context.WithCancel(context.Background())
	cDone = sendRaw(c, cctx, rawIQ("C"))
	waitQueue(t, c, 2)
	return bDone, cDone, cctx, cancel
}

// readN reads exactly n bytes from r.
func readN(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	require.NoError(t, err)
	return b
}

func ids(t *testing.T, w *wire, n int) []string {
	t.Helper()
	var got []string
	for i := 0; i < n; i++ {
		got = append(got, w.nextIQ(t).ID)
	}
	return got
}

func TestWrite_QueuedStanzasLeaveInOneWrite(t *testing.T) {
	leakCheck(t)
	c, tr, peer, aDone := stalled(t)
	const n = 20
	var errs []chan error
	var want []string
	for i := 0; i < n; i++ {
		id := fmt.Sprint("q", i)
		errs = append(errs, sendRaw(c, context.Background(), rawIQ(id)))
		want = append(want, id)
		waitQueue(t, c, i+1) // so that the queue's order is known
	}
	w := newWire(peer, iq.NSClient)
	require.NoError(t, recvErr(t, aDone, waitLong))
	for i, errc := range errs {
		require.NoError(t, recvErr(t, errc, waitLong), "q%d", i)
	}
	assert.Equal(t, "A", w.nextIQ(t).ID)
	assert.Equal(t, want, ids(t, w, n), "in the order they queued")
	assert.Len(t, tr.entered, 1, "the %d queued stanzas left in one Write", n)
	assert.Equal(t, 0, stream.WriteQueueLen(c))
	closeConn(t, c, w)
}

// A batch's Write cut short by one of its stanzas' contexts: the stanzas
// before it are written, it is finished in the background (a stanza is
// whole in the stream or absent), the ones after it, not begun, go back
// to the queue and are written next, and each sender hears its own fate.
func TestWrite_BatchCutShortKeepsEveryStanzaWhole(t *testing.T) {
	leakCheck(t)
	c, _, peer, aDone := stalled(t)
	bDone, cDone, _, cancelC := queueBThenC(t, c)
	defer cancelC()
	dDone := sendRaw(c, context.Background(), rawIQ("D"))
	waitQueue(t, c, 3)

	var seen bytes.Buffer
	seen.Write(readN(t, peer, len(rawIQ("A"))))
	require.NoError(t, recvErr(t, aDone, waitLong))
	// B leads the batch B C D: let B and three bytes of C through.
	seen.Write(readN(t, peer, len(rawIQ("B"))+3))
	cancelC()
	err := recvErr(t, cDone, waitLong)
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, recvErr(t, bDone, waitLong), "B was written whole before C's context ended")

	w := newWire(io.MultiReader(&seen, peer), iq.NSClient)
	require.NoError(t, recvErr(t, dDone, waitLong), "D, not begun, goes out after C")
	assert.Equal(t, []string{"A", "B", "C", "D"}, ids(t, w, 4), "C finished whole, D after it")
	assert.Nil(t, c.Err(), "the stream goes on")
	require.NoError(t, c.SendRaw(context.Background(), rawIQ("E")))
	assert.Equal(t, "E", w.nextIQ(t).ID)
	raw := closeConn(t, c, w)
	assert.True(t, w.sawEndTag(), "the whole output is one well-formed stream: %v", w.decodeErr())
	assert.Equal(t, string(rawIQ("A"))+string(rawIQ("B"))+string(rawIQ("C"))+string(rawIQ("D"))+string(rawIQ("E"))+"</stream:stream>", raw)
}

// A stanza whose deadline passes before its bytes leave fails with
// DeadlineExceeded and is never written, whether it waited in the queue
// or led a batch the peer did not read; the others are written.
func TestWrite_DeadlineOfQueuedStanza(t *testing.T) {
	for _, tc := range []struct {
		name string
		// readA: the peer reads A before B's deadline, so that B leads a
		// batch (B, C) that the peer does not read
		readA bool
	}{
		{"while queued", false},
		{"leading a batch nobody reads", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			c, _, peer, aDone := stalled(t)
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			defer cancel()
			bDone := sendRaw(c, ctx, rawIQ("B"))
			waitQueue(t, c, 1)
			cDone := sendRaw(c, context.Background(), rawIQ("C"))
			waitQueue(t, c, 2)
			var seen bytes.Buffer
			if tc.readA {
				seen.Write(readN(t, peer, len(rawIQ("A"))))
				require.NoError(t, recvErr(t, aDone, waitLong))
			}
			err := recvErr(t, bDone, waitLong)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.Nil(t, c.Err(), "nothing of B was written: the stream goes on")

			w := newWire(io.MultiReader(&seen, peer), iq.NSClient)
			if !tc.readA {
				require.NoError(t, recvErr(t, aDone, waitLong))
			}
			require.NoError(t, recvErr(t, cDone, waitLong))
			assert.Equal(t, []string{"A", "C"}, ids(t, w, 2))
			raw := closeConn(t, c, w)
			assert.NotContains(t, raw, `"B"`)
			assert.Equal(t, 0, stream.WriteQueueLen(c))
		})
	}
}

// The queue holds at most its bound; a sender beyond it waits for room,
// heeding its context, and is written once there is room.
func TestWrite_QueueIsBounded(t *testing.T) {
	leakCheck(t)
	c, _, peer, aDone := stalled(t)
	const bound, senders = 4, 12
	stream.WriteQueueLimit(c, bound)
	var errs []chan error
	for i := 0; i < senders; i++ {
		errs = append(errs, sendRaw(c, context.Background(), rawIQ(fmt.Sprint("s", i))))
	}
	waitQueue(t, c, bound)
	for i, errc := range errs {
		select {
		case err := <-errc:
			t.Fatalf("s%d returned (%v) while the peer reads nothing", i, err)
		default:
		}
	}
	// One more, with a deadline, gives up waiting for room.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := c.SendRaw(ctx, rawIQ("late"))
	require.ErrorIs(t, err, context.DeadlineExceeded)

	w := newWire(peer, iq.NSClient)
	require.NoError(t, recvErr(t, aDone, waitLong))
	for i, errc := range errs {
		require.NoError(t, recvErr(t, errc, waitLong), "s%d", i)
	}
	got := ids(t, w, senders+1)
	assert.Equal(t, "A", got[0])
	assert.ElementsMatch(t, func() []string {
		var s []string
		for i := 0; i < senders; i++ {
			s = append(s, fmt.Sprint("s", i))
		}
		return s
	}(), got[1:])
	assert.Equal(t, bound, stream.WriteQueuePeak(c), "never more than the bound queued")
	raw := closeConn(t, c, w)
	assert.NotContains(t, raw, "late")
}

// Close and Shutdown let the write under way finish before the closing
// tag and fail the stanzas still queued with ErrClosed: none is half
// written, none is reported written that was not.
func TestWrite_CloseFlushesTheWriteUnderWayAndFailsTheQueue(t *testing.T) {
	for _, tc := range []struct {
		name     string
		shutdown bool
	}{
		{"Close", false},
		{"Shutdown", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			c, _, peer, aDone := stalled(t)
			ep := iq.NewEndpoint(c)
			served := make(chan error, 1)
			if tc.shutdown {
				go func() { served <- c.Serve(context.Background(), ep, nil) }()
			}
			var errs []chan error
			for i := 0; i < 3; i++ {
				errs = append(errs, sendRaw(c, context.Background(), rawIQ(fmt.Sprint("q", i))))
				waitQueue(t, c, i+1)
			}
			first := readN(t, peer, 1)
			closed := make(chan error, 1)
			go func() {
				if tc.shutdown {
					closed <- c.Shutdown(context.Background(), ep)
				} else {
					closed <- c.Close()
				}
			}()
			for i, errc := range errs {
				err := recvErr(t, errc, waitLong)
				require.ErrorIs(t, err, iq.ErrClosed, "q%d", i)
				require.ErrorIs(t, err, stream.ErrClosed, "q%d", i)
			}
			w := newWire(io.MultiReader(bytes.NewReader(first), peer), iq.NSClient)
			require.NoError(t, recvErr(t, aDone, waitLong), "A, under way, was written whole")
			if tc.shutdown {
				select {
				case <-w.endTag:
				case <-time.After(waitLong):
					t.Fatalf("no closing tag; read %q", w.tail())
				}
				assert.Equal(t, string(rawIQ("A"))+"</stream:stream>", w.Raw())
				_, err := peer.Write([]byte("</stream:stream>"))
				require.NoError(t, err)
				require.NoError(t, recvErr(t, served, waitLong))
			}
			require.NoError(t, recvErr(t, closed, waitLong))
			raw := w.waitEOF(t)
			assert.Equal(t, string(rawIQ("A"))+"</stream:stream>", raw)
		})
	}
}

// A transport that fails ends the stream, and every sender waiting then,
// in the write or in the queue, hears that the stream closed.
func TestWrite_TransportErrorFailsEveryWaitingSender(t *testing.T) {
	for _, tc := range []struct {
		name  string
		readA bool // the peer reads A, so that the failing Write is a batch's
	}{
		{"a stanza written alone", false},
		{"a batch", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			c, tr, peer, aDone := stalled(t)
			var errs []chan error
			for i := 0; i < 3; i++ {
				errs = append(errs, sendRaw(c, context.Background(), rawIQ(fmt.Sprint("q", i))))
				waitQueue(t, c, i+1)
			}
			if tc.readA {
				readN(t, peer, len(rawIQ("A")))
				require.NoError(t, recvErr(t, aDone, waitLong))
				select { // the batch's Write
				case <-tr.entered:
				case <-time.After(waitLong):
					t.Fatal("the batch's write did not start")
				}
			} else {
				errs = append(errs, aDone)
			}
			require.NoError(t, peer.Close())
			for i, errc := range errs {
				err := recvErr(t, errc, waitLong)
				require.ErrorIs(t, err, iq.ErrClosed, "sender %d", i)
			}
			select {
			case <-c.Done():
			case <-time.After(waitLong):
				t.Fatal("the stream did not end")
			}
			require.Error(t, c.Err())
			assert.ErrorIs(t, c.SendRaw(context.Background(), rawIQ("after")), iq.ErrClosed)
		})
	}
}

// Many senders, some of whose deadlines pass while they wait or while
// their batch is written, to a peer that reads in small bites: the stream
// stays well-formed, every stanza reported written is in it, once, and
// whole.
func TestWrite_ConcurrentSendersWithDeadlines(t *testing.T) {
	leakCheck(t)
	p1, p2 := net.Pipe()
	defer p2.Close()
	c := stream.New(p1)
	slow := readerFunc(func(b []byte) (int, error) {
		if len(b) > 700 {
			b = b[:700]
		}
		return p2.Read(b)
	})
	w := newWire(slow, iq.NSClient)

	const goroutines, each = 32, 25
	var (
		mu      sync.Mutex
		written = map[string]bool{}
		wg      sync.WaitGroup
	)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for k := 0; k < each; k++ {
				id := fmt.Sprintf("g%d-%d", g, k)
				body := strings.Repeat("x", bodyLen(g, k))
				b := []byte(`<iq type="result" id="` + id + `"><r xmlns="` + hNS + `">` + body + `</r></iq>`)
				// A third without a deadline, the others with up to 5 ms.
				ctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(3) > 0 {
					ctx, cancel = context.WithTimeout(ctx, time.Duration(rng.IntN(5000))*time.Microsecond)
				}
				err := c.SendRaw(ctx, b)
				cancel()
				if err == nil {
					mu.Lock()
					written[id] = true
					mu.Unlock()
				} else if !assert.ErrorIs(t, err, context.DeadlineExceeded, id) {
					return
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, c.SendRaw(context.Background(), rawIQ("last")))
	seen := map[string]int{}
	for {
		in := w.nextIQ(t)
		if in.ID == "last" {
			break
		}
		seen[in.ID]++
		var g, k int
		_, err := fmt.Sscanf(in.ID, "g%d-%d", &g, &k)
		require.NoError(t, err, in.ID)
		require.NotNil(t, in.Payload, in.ID)
		require.Equal(t, strings.Repeat("x", bodyLen(g, k)), in.Payload.Text(), in.ID)
	}
	for id := range written {
		assert.Equal(t, 1, seen[id], "%s was reported written", id)
	}
	for id, n := range seen {
		assert.Equal(t, 1, n, "%s written more than once", id)
	}
	t.Logf("%d of %d reported written, %d on the wire", len(written), goroutines*each, len(seen))
	closeConn(t, c, w)
	assert.True(t, w.sawEndTag(), "the whole output decodes as one stream: %v", w.decodeErr())
	assert.Nil(t, w.decodeErr())
}

func bodyLen(g, k int) int { return (g*997 + k*131) % 3000 }

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

// A Write that carried several stanzas makes the stream busy: its next senders yield before
// writing, so that those ready to send join them, and still write their
// stanzas whole and in order; once busyYields writes in a row found nobody
// to join them (the one handed the lock counts), the stream is quiet again and a lone sender writes at once.
func TestWrite_BusyStreamTurnsQuietWhenNobodyQueues(t *testing.T) {
	leakCheck(t)
	c, _, peer, aDone := stalled(t)
	assert.False(t, stream.WriteBusy(c), "a first write alone leaves the stream quiet")
	q0 := sendRaw(c, context.Background(), rawIQ("q0"))
	waitQueue(t, c, 1)
	assert.False(t, stream.WriteBusy(c), "one stanza queued is no sign of load yet")
	q1 := sendRaw(c, context.Background(), rawIQ("q1"))
	waitQueue(t, c, 2)
	w := newWire(peer, iq.NSClient)
	require.NoError(t, recvErr(t, aDone, waitLong))
	require.NoError(t, recvErr(t, q0, waitLong))
	require.NoError(t, recvErr(t, q1, waitLong))
	assert.Equal(t, []string{"A", "q0", "q1"}, ids(t, w, 3))
	assert.True(t, stream.WriteBusy(c), "two stanzas left in one Write")

	for i := 0; i < stream.BusyYields; i++ {
		id := fmt.Sprint("s", i)
		errc := sendRaw(c, context.Background(), rawIQ(id))
		assert.Equal(t, id, w.nextIQ(t).ID)
		require.NoError(t, recvErr(t, errc, waitLong), id)
	}
	assert.False(t, stream.WriteBusy(c), "quiet after %d lone writes", stream.BusyYields)
	closeConn(t, c, w)
}
