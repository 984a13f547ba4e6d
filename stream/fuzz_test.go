package stream_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// fuzzTransport feeds fixed bytes to a Conn and swallows what it writes.
type fuzzTransport struct {
	r      *bytes.Reader
	mu     sync.Mutex
	closed bool
	wrote  int
}

func (f *fuzzTransport) Read(p []byte) (int, error) {
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return 0, io.ErrClosedPipe
	}
	return f.r.Read(p)
}

func (f *fuzzTransport) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, io.ErrClosedPipe
	}
	f.wrote += len(p)
	return len(p), nil
}

func (f *fuzzTransport) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	return nil
}

// FuzzConnRead serves arbitrary bytes as a stream: Serve must return (no
// hang, no panic) with one of the errors it documents, and the Conn must
// never read more than the stanza limit past the last stanza it finished.
func FuzzConnRead(f *testing.F) {
	f.Add([]byte(`<iq type='get' id='a'><q xmlns='u:x'/></iq></stream:stream>`))
	const limit = 4096
	f.Fuzz(func(t *testing.T, data []byte) {
		tr := &fuzzTransport{r: bytes.NewReader(data)}
		c := stream.New(tr, stream.WithMaxStanzaSize(limit))
		ep := iq.NewEndpoint(c)
		ep.Callee.Get("u:x", "q", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
			return req.Payload, nil
		})
		done := make(chan error, 1)
		go func() { done <- c.Serve(context.Background(), ep, func(context.Context, *iq.Element) {}) }()
		select {
		case err := <-done:
			var se *stream.StreamError
			switch {
			case err == nil, errors.As(err, &se), errors.Is(err, stream.ErrStanzaTooBig),
				errors.Is(err, stream.ErrNotWellFormed), errors.Is(err, io.ErrUnexpectedEOF),
				errors.Is(err, stream.ErrUnsupportedEncoding), errors.Is(err, stream.ErrUnsupportedXMLVersion),
				errors.Is(err, io.EOF):
			default:
				// Restricted XML is reported as a plain error; it is
				// fine as long as Serve returned.
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Serve did not return for %q", data)
		}
		if ep.Caller.Pending() != 0 {
			t.Fatal("requests left pending")
		}
	})
}
