package stream_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// TestHardeningBugRequestDeadlineMidWriteEndsStream: Caller.Go hands the
// request's own context to Conn.SendIQ, and Conn.write applies its deadline
// to the transport write. When a peer (or the TCP window) takes only part
// of a stanza before that deadline, the Conn must end the stream, so one
// request with a short deadline on a congested stream fails every other
// pending request with ErrClosed and loses the session.
func TestHardeningBugRequestDeadlineMidWriteEndsStream(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p1, p2 := net.Pipe()
	ca := stream.New(p1)
	ea := iq.NewEndpoint(ca, iq.WithTimeout(20*time.Second))
	serve := make(chan error, 1)
	go func() { serve <- ca.Serve(context.Background(), ea, nil) }()

	// The peer reads the first request whole, then 8 bytes of the next,
	// then stalls (a slow reader, a full TCP window) until resumed.
	stalled, resume, peerDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(peerDone)
		var seen bytes.Buffer
		b := make([]byte, 1)
		for !strings.HasSuffix(seen.String(), "</iq>") {
			if _, err := p2.Read(b); err != nil {
				close(stalled)
				return
			}
			seen.Write(b)
		}
		_, _ = io.ReadFull(p2, make([]byte, 8))
		close(stalled)
		<-resume
		_, _ = io.Copy(io.Discard, p2)
	}()

	patient := ea.Caller.Go(context.Background(), &iq.IQ{Type: iq.TypeGet, To: "peer.example",
		Payload: iq.NewElement(hardNS, "q")}, nil)
	require.NoError(t, patient.Err)
	require.Equal(t, 1, ea.Caller.Pending())

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	impatient := ea.Caller.Go(ctx, &iq.IQ{Type: iq.TypeGet, To: "peer.example",
		Payload: iq.NewElement(hardNS, "q").AppendText(strings.Repeat("x", 4096))}, nil)
	cancel()
	<-stalled
	got := <-impatient.Done
	assert.Error(t, got.Err, "the impatient request")

	streamErr := ca.Err()
	close(resume)
	_ = ca.Close()
	<-serve
	_ = p2.Close()
	<-peerDone

	// With the bug, the stream is already dead here, and the patient
	// request fails with ErrClosed as soon as the reader notices.
	assert.NoError(t, streamErr, "one request's deadline ended the whole stream")
}
