package stream_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// itemsPayload is a payload of n items whose attributes and text name
// tag: a tree big enough to be given back by IQ.Release.
func itemsPayload(tag string, n int) *iq.Element {
	q := iq.NewElement(hNS, "items")
	for i := range n {
		q.Append(iq.NewElement(hNS, "item", "n", fmt.Sprint(i)).AppendText(fmt.Sprintf("%s/%d", tag, i)))
	}
	return q
}

// TestReleasedTreesAreNotSeenByOtherStanzas: with WithReleaseRequests on
// the answering end and IQ.Release on every response, the memory of each
// tree read is reused for later stanzas, and no stanza ever reads
// another's elements: many requests in flight at once, each echoed, each
// response checked whole before its release (and, with -race, no release
// races with the reader's reuse).
func TestReleasedTreesAreNotSeenByOtherStanzas(t *testing.T) {
	leakCheck(t)
	a, b := net.Pipe()
	ca, cb := stream.New(a), stream.New(b)
	client := iq.NewEndpoint(ca)
	server := iq.NewEndpoint(cb, iq.WithReleaseRequests())
	server.Callee.Get(hNS, "items", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		return req.Payload, nil // an echo: the reply holds the request's tree
	})
	var served sync.WaitGroup
	served.Go(func() { _ = ca.Serve(context.Background(), client, nil) })
	served.Go(func() { _ = cb.Serve(context.Background(), server, nil) })
	defer func() {
		require.NoError(t, ca.Close())
		_ = cb.Close()
		served.Wait()
	}()

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				tag := fmt.Sprintf("g%d-%d", g, i)
				want := itemsPayload(tag, 12+i%9)
				resp, err := client.Caller.Request(context.Background(), &iq.IQ{Type: iq.TypeGet, Payload: want})
				if !assert.NoError(t, err) {
					return
				}
				assert.True(t, want.Equal(resp.Payload), "%s: got %v", tag, resp.Payload)
				kept := slices.Collect(resp.Payload.Children())[3].Text()
				resp.Release()
				assert.Nil(t, resp.Payload)
				assert.Equal(t, tag+"/3", kept, "a string read from a tree outlives its Release")
			}
		})
	}
	wg.Wait()
}
