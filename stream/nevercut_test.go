package stream_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq/stream"
)

// deadlineCounter is a transport that counts the write deadlines set on
// it, other than the zero one that clears a deadline.
type deadlineCounter struct {
	net.Conn
	set atomic.Int32
}

func (d *deadlineCounter) SetWriteDeadline(t time.Time) error {
	if !t.IsZero() {
		d.set.Add(1)
	}
	return d.Conn.SetWriteDeadline(t)
}

// TestWithWritesNeverCut: on a transport declared unable to resume a cut
// write, a sender whose deadline passes while the peer does not read gets
// its context's error on time, no write deadline ever reaches the
// transport, the stanza arrives whole once the peer reads, and the stream
// goes on. Without the option, the same write is cut by a deadline (the
// transport, a wrapped net.Pipe, is taken at net.Conn's word).
func TestWithWritesNeverCut(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     []stream.Option
		neverCut bool
	}{
		{"declared", []stream.Option{stream.WithWritesNeverCut()}, true},
		{"not declared", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			a, b := net.Pipe()
			tr := &deadlineCounter{Conn: a}
			c := stream.New(tr, tc.opts...)
			defer c.Close()

			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := c.SendIQ(ctx, result("slow"))
			require.Error(t, err, "the peer reads nothing: the write cannot finish")
			assert.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
			assert.Less(t, time.Since(start), waitLong, "the sender waited past its deadline")

			// The peer reads again.
			var (
				mu  sync.Mutex
				got []byte
			)
			go func() {
				buf := make([]byte, 4096)
				for {
					n, err := b.Read(buf)
					mu.Lock()
					got = append(got, buf[:n]...)
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
			read := func() []byte {
				mu.Lock()
				defer mu.Unlock()
				return bytes.Clone(got)
			}
			if tc.neverCut {
				require.NoError(t, c.SendIQ(context.Background(), result("next")), "the stream goes on")
				require.Eventually(t, func() bool { return bytes.Count(read(), []byte("</iq>")) == 2 }, waitLong, time.Millisecond)
				all := read()
				assert.Contains(t, string(all), ">slow</r></iq>", "the stanza whose sender gave up arrives whole")
				assert.Contains(t, string(all), ">next</r></iq>")
				assert.Zero(t, tr.set.Load(), "a write deadline reached the transport")
			} else {
				assert.NotZero(t, tr.set.Load(), "the write was not cut by a deadline")
			}
			_ = b.Close()
		})
	}
}
