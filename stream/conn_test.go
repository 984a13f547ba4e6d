package stream_test

import (
	"context"
	"errors"
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

const echoNS = "urn:example:echo"

// pair returns two served Conns over net.Pipe, each with an Endpoint, and
// the channels Serve's results arrive on.
func pair(t *testing.T, opts ...stream.Option) (a, b *iq.Endpoint, ca, cb *stream.Conn, ea, eb chan error) {
	t.Helper()
	p1, p2 := net.Pipe()
	ca, cb = stream.New(p1, opts...), stream.New(p2, opts...)
	a, b = iq.NewEndpoint(ca), iq.NewEndpoint(cb)
	ea, eb = make(chan error, 1), make(chan error, 1)
	go func() { ea <- ca.Serve(context.Background(), a, nil) }()
	go func() { eb <- cb.Serve(context.Background(), b, nil) }()
	return
}

func TestConn_RoundTrip(t *testing.T) {
	defer goleak.VerifyNone(t)
	a, b, ca, cb, ea, eb := pair(t)
	b.Callee.Get(echoNS, "echo", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		return iq.NewElement(echoNS, "echo").AppendText(req.Payload.Text()), nil
	})
	for i := 0; i < 50; i++ {
		res, err := a.Caller.Get(context.Background(), "", iq.NewElement(echoNS, "echo").AppendText("hi & <bye>"))
		require.NoError(t, err)
		assert.Equal(t, "hi & <bye>", res.Text())
	}
	_, err := a.Caller.Get(context.Background(), "", iq.NewElement("urn:unknown", "q"))
	var se *iq.StanzaError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, iq.FeatureNotImplemented, se.Condition)

	require.NoError(t, ca.Close())
	assert.NoError(t, <-ea)
	assert.NoError(t, <-eb) // the peer's orderly </stream:stream>
	_ = cb
}

func TestConn_StanzaTooBigIsPolicyViolation(t *testing.T) {
	defer goleak.VerifyNone(t)
	p1, p2 := net.Pipe()
	c := stream.New(p1, stream.WithMaxStanzaSize(1024))
	ep := iq.NewEndpoint(c)
	done := make(chan error, 1)
	go func() { done <- c.Serve(context.Background(), ep, nil) }()
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(p2)
		got <- string(b)
	}()
	big := "<iq type='get' id='x'><q xmlns='u:x'>" + strings.Repeat("A", 1<<20) + "</q></iq>"
	go func() { _, _ = p2.Write([]byte(big)) }()
	err := <-done
	assert.ErrorIs(t, err, stream.ErrStanzaTooBig)
	assert.Contains(t, <-got, "policy-violation")
}

func TestConn_MalformedIsNotWellFormed(t *testing.T) {
	defer goleak.VerifyNone(t)
	p1, p2 := net.Pipe()
	c := stream.New(p1)
	ep := iq.NewEndpoint(c)
	done := make(chan error, 1)
	go func() { done <- c.Serve(context.Background(), ep, nil) }()
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(p2)
		got <- string(b)
	}()
	_, _ = p2.Write([]byte("<iq type='get' id='x'><q xmlns='u:x'></z></iq>"))
	err := <-done
	assert.ErrorIs(t, err, stream.ErrNotWellFormed)
	assert.Contains(t, <-got, "not-well-formed")
}

func TestConn_EndFailsPendingWithErrClosed(t *testing.T) {
	defer goleak.VerifyNone(t)
	a, _, ca, cb, ea, eb := pair(t)
	_ = ca
	errs := make(chan error, 10)
	for i := 0; i < 10; i++ {
		go func() {
			_, err := a.Caller.Get(context.Background(), "", iq.NewElement("u:silent", "q"))
			errs <- err
		}()
	}
	// The peer's Callee answers feature-not-implemented; make the peer
	// vanish instead by closing its transport abruptly before the replies.
	require.Eventually(t, func() bool { return true }, time.Second, time.Millisecond)
	cb.Close()
	<-eb
	<-ea
	for i := 0; i < 10; i++ {
		select {
		case err := <-errs:
			if err != nil {
				var se *iq.StanzaError
				if !errors.As(err, &se) {
					assert.ErrorIs(t, err, iq.ErrClosed)
				}
			}
		case <-time.After(time.Second):
			t.Fatal("a request was not ended within a second")
		}
	}
}
