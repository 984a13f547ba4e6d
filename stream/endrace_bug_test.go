package stream_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// cutTransport is a transport that goes away under a write: Read and
// Write block until cut is closed, then Read fails at once, and the Write
// under way fails only once the reader has begun ending the stream (the
// order in which a TCP connection closed under the process was seen to
// race).
type cutTransport struct {
	cut       chan struct{}
	closeOnce sync.Once
	closed    chan struct{}
	// readerEnding reports whether the Conn has begun ending its stream.
	readerEnding func() bool
	writing      chan struct{} // gets a value when a Write starts
}

func (c *cutTransport) Read([]byte) (int, error) {
	<-c.cut
	return 0, io.ErrUnexpectedEOF
}

func (c *cutTransport) Write(p []byte) (int, error) {
	c.writing <- struct{}{}
	<-c.cut
	for !c.readerEnding() {
		time.Sleep(time.Millisecond)
	}
	return 0, errors.New("write on a closed connection")
}

func (c *cutTransport) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

// TestBugTransportCutUnderAWrite: a transport closed under a write made the
// reader's end of the stream wait for the write lock, held by the writer,
// which in turn waited for the reader's end to finish: pending requests
// failed only after closeWriteWait (1 s), past the bound of a second in
// which the lost connection's requests must fail. Now the writer tells the
// waiting end that nothing more can be written, and the stream ends at
// once.
func TestBugTransportCutUnderAWrite(t *testing.T) {
	tr := &cutTransport{cut: make(chan struct{}), closed: make(chan struct{}), writing: make(chan struct{}, 1)}
	conn := stream.New(tr)
	// A write from another goroutine returns at once with an error other
	// than its context's once the stream has begun ending (the lock being
	// held by the blocked Write).
	tr.readerEnding = func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		defer cancel()
		err := conn.SendRaw(ctx, []byte("<x/>"))
		return err != nil && !errors.Is(err, context.DeadlineExceeded)
	}
	ep := iq.NewEndpoint(conn)
	served := make(chan error, 1)
	go func() { served <- conn.Serve(context.Background(), ep, nil) }()

	pending := make(chan *iq.Call, 1)
	go ep.Caller.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, To: "peer.example", Payload: iq.NewElement("urn:example", "q")}, pending)
	<-tr.writing // the request's write holds the lock (Go waits for it)
	close(tr.cut)

	// The bug made this wait closeWriteWait (1 s); now it takes
	// microseconds, and 900 ms leaves room for a loaded machine.
	select {
	case <-conn.Done():
	case <-time.After(900 * time.Millisecond):
		t.Fatal("the stream did not end within 900 ms of its transport going away under a write")
	}
	call := <-pending
	assert.ErrorIs(t, call.Err, iq.ErrClosed)
	require.Error(t, <-served)
}
