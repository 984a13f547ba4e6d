package stream_test

import (
	"context"
	"fmt"
	"io"
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

// signalConn is a net.Conn that reports each Write as it starts.
type signalConn struct {
	net.Conn
	entered chan struct{}
}

func (s *signalConn) Write(p []byte) (int, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	return s.Conn.Write(p)
}

// newSignalPipe returns a net.Pipe whose first end reports its writes.
func newSignalPipe() (*signalConn, net.Conn) {
	a, b := net.Pipe()
	return &signalConn{Conn: a, entered: make(chan struct{}, 64)}, b
}

func result(id string) *iq.IQ {
	return &iq.IQ{ID: id, Type: iq.TypeResult, Payload: iq.NewElement(hNS, "r").AppendText(id)}
}

// closeConn closes c while w drains the transport, and checks that both end.
func closeConn(t *testing.T, c *stream.Conn, w *wire) string {
	t.Helper()
	require.NoError(t, c.Close())
	return w.waitEOF(t)
}

// plainRWC hides a net.Conn's deadlines: a transport that is only an
// io.ReadWriteCloser.
type plainRWC struct{ c net.Conn }

func (p plainRWC) Read(b []byte) (int, error)  { return p.c.Read(b) }
func (p plainRWC) Write(b []byte) (int, error) { return p.c.Write(b) }
func (p plainRWC) Close() error                { return p.c.Close() }

func TestSendIQ_DoneContextWritesNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ctx   func() (context.Context, context.CancelFunc)
		want  error
		plain bool // the transport has no deadlines
	}{
		{"cancelled, transport without deadlines", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled, true},
		{"cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled, false},
		{"deadline passed", func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		}, context.DeadlineExceeded, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			p1, p2 := net.Pipe()
			defer p2.Close()
			var tr io.ReadWriteCloser = p1
			if tc.plain {
				tr = plainRWC{p1}
			}
			c := stream.New(tr)
			w := newWire(p2, iq.NSClient)
			ctx, cancel := tc.ctx()
			defer cancel()
			// Many tries: a done ctx must lose every time, not half of them.
			for i := 0; i < 100; i++ {
				err := c.SendIQ(ctx, result(fmt.Sprint("dead-", i)))
				require.Error(t, err, "try %d", i)
				require.ErrorIs(t, err, tc.want, "try %d", i)
			}
			assert.Error(t, c.SendRaw(ctx, []byte("<presence/>")))
			assert.Error(t, c.SendElement(ctx, iq.NewElement("", "presence")))
			// The stream is intact and usable.
			require.Nil(t, c.Err())
			err := c.SendIQ(context.Background(), result("alive"))
			if assert.NoError(t, err, "a done context must leave the transport usable") {
				assert.Equal(t, "alive", w.nextIQ(t).ID)
			}
			raw := closeConn(t, c, w)
			assert.NotContains(t, raw, "dead-", "a done context must write nothing")
			assert.NotContains(t, raw, "<presence", "a done context must write nothing")
		})
	}
}

func TestSendIQ_DeadlineWhileWaitingForWriteLock(t *testing.T) {
	leakCheck(t)
	p1, p2 := net.Pipe()
	defer p2.Close()
	c := stream.New(p1)

	// A holds the write lock: its write is under way (one byte taken) and
	// stalls on a peer that reads no more.
	aDone := make(chan error, 1)
	go func() { aDone <- c.SendIQ(context.Background(), result("A")) }()
	first := make([]byte, 1)
	_, err := io.ReadFull(p2, first)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = c.SendIQ(ctx, result("B"))
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Nil(t, c.Err(), "a request that never got the lock leaves the stream alone")

	// The peer reads again: A completes, B was never written, C works.
	w := newWire(io.MultiReader(strings.NewReader(string(first)), p2), iq.NSClient)
	require.NoError(t, recvErr(t, aDone, waitLong))
	require.NoError(t, c.SendIQ(context.Background(), result("C")))
	assert.Equal(t, "A", w.nextIQ(t).ID)
	assert.Equal(t, "C", w.nextIQ(t).ID)
	raw := closeConn(t, c, w)
	assert.NotContains(t, raw, `"B"`)
}

// A write that a context ends before any byte went out leaves the stream
// intact, as SendIQ's doc says; the next write, under a context with no
// deadline, must work.
func TestSendIQ_ContextEndsBlockedWriteStreamStaysUsable(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		end  func(cancel context.CancelFunc)
	}{
		{"cancel", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			func(cancel context.CancelFunc) { cancel() }},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		}, func(context.CancelFunc) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			tr, p2 := newSignalPipe()
			defer p2.Close()
			c := stream.New(tr)
			ctx, cancel := tc.ctx()
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- c.SendIQ(ctx, result("A")) }()
			select {
			case <-tr.entered:
			case <-time.After(waitLong):
				t.Fatal("write not started")
			}
			tc.end(cancel)
			err := recvErr(t, done, waitLong)
			require.Error(t, err)
			assert.True(t, errorsIsAny(err, context.Canceled, context.DeadlineExceeded), "%v", err)
			require.Nil(t, c.Err(), "nothing was written, so the stream goes on")

			w := newWire(p2, iq.NSClient)
			err = c.SendIQ(context.Background(), result("B"))
			require.NoError(t, err, "the ended context's deadline must not stick to the transport")
			assert.Equal(t, "B", w.nextIQ(t).ID)
			closeConn(t, c, w)
		})
	}
}

func TestSendIQ_ConcurrentWritesNeverInterleave(t *testing.T) {
	leakCheck(t)
	p1, p2 := net.Pipe()
	defer p2.Close()
	c := stream.New(p1)
	w := newWire(p2, iq.NSClient)

	const goroutines, each = 64, 4
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, goroutines*each)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for k := 0; k < each; k++ {
				id := fmt.Sprintf("g%d-%d", g, k)
				// Sizes from tiny to well over a pipe's or a buffer's chunk.
				body := strings.Repeat(string(rune('a'+g%26)), (g*997+k*4099)%20000)
				var err error
				switch k {
				case 3:
					err = c.SendRaw(context.Background(), []byte(`<iq type="result" id="`+id+`"><r xmlns="`+hNS+`">`+body+`</r></iq>`))
				case 2:
					el := iq.NewElement("", "iq", "type", "result", "id", id)
					el.Append(iq.NewElement(hNS, "r").AppendText(body))
					err = c.SendElement(context.Background(), el)
				default:
					err = c.SendIQ(context.Background(), &iq.IQ{ID: id, Type: iq.TypeResult, Payload: iq.NewElement(hNS, "r").AppendText(body)})
				}
				errs <- err
			}
		}()
	}
	close(start)
	seen := map[string]int{}
	for i := 0; i < goroutines*each; i++ {
		in := w.nextIQ(t)
		seen[in.ID]++
		var g, k int
		_, err := fmt.Sscanf(in.ID, "g%d-%d", &g, &k)
		require.NoError(t, err, in.ID)
		require.NotNil(t, in.Payload, in.ID)
		want := strings.Repeat(string(rune('a'+g%26)), (g*997+k*4099)%20000)
		require.Equal(t, len(want), len(in.Payload.Text()), in.ID)
		require.Equal(t, want, in.Payload.Text(), in.ID)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for g := 0; g < goroutines; g++ {
		for k := 0; k < each; k++ {
			assert.Equal(t, 1, seen[fmt.Sprintf("g%d-%d", g, k)], "g%d-%d", g, k)
		}
	}
	assert.Len(t, seen, goroutines*each)
	raw := closeConn(t, c, w)
	assert.True(t, w.sawEndTag(), "the whole output decodes as one stream: %v", w.decErr)
	assert.True(t, strings.HasSuffix(raw, "</stream:stream>"))
}
