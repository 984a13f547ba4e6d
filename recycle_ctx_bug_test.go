package iq_test

import (
	"context"
	"testing"

	"github.com/xmpp-iq/iq"
)

type wrapKey struct{}

// wrapSender watches a wrapper of its context with context.AfterFunc,
// as stream.Conn does for a context that has no AfterFunc method, stops
// the watch before it returns, and answers the request at once.
type wrapSender struct{ c **iq.Caller }

func (w wrapSender) SendIQ(ctx context.Context, i *iq.IQ) error {
	wctx := context.WithValue(ctx, wrapKey{}, 1)
	stop := context.AfterFunc(wctx, func() {})
	stop()
	resp := &iq.IQ{Type: iq.TypeResult, ID: i.ID}
	(*w.c).Receive(resp)
	return nil
}

// TestBugRecycledCallReadByContextPackageGoroutine: a Sender that wraps
// its context and watches the wrapper with context.AfterFunc makes the
// context package start a goroutine that may ask the request's context
// for Done after Request has returned and recycled the Call for the next
// request; the send context's fields were read there unsynchronised (a
// data race under -race). They are read under its lock now.
func TestBugRecycledCallReadByContextPackageGoroutine(t *testing.T) {
	var c *iq.Caller
	c = iq.NewCaller(wrapSender{&c})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for range n {
		resp, err := c.Request(ctx, &iq.IQ{Type: iq.TypeGet, Payload: iq.NewElement("urn:x", "q")})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Type != iq.TypeResult {
			t.Fatalf("response %v, want a result", resp.Type)
		}
	}
}
