package bench

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/component"
	"github.com/xmpp-iq/iq/stream"
)

// TestPoolPeerSpreads checks that the iq-pool rows measure what they say:
// one at a time, the requests take every connection of the client's Pool
// in turn, and each is served on a connection of the server's own.
func TestPoolPeerSpreads(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			const n = 4
			p := newPoolPeer(t, tr, n)
			var mu sync.Mutex
			seen := map[*stream.Conn]int{}
			p.server.Callee.Get("urn:example:which", "query", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
				conn, ok := component.ServedOn(ctx)
				if !ok {
					return nil, iq.NewError(iq.Cancel, iq.InternalServerError, "not served by a Pool")
				}
				mu.Lock()
				seen[conn]++
				mu.Unlock()
				return nil, nil
			})
			ctx := testContext(t)
			for range 2 * n {
				_, err := p.client.Caller.Get(ctx, p.to, iq.NewElement("urn:example:which", "query"))
				require.NoError(t, err)
			}
			mu.Lock()
			defer mu.Unlock()
			assert.Len(t, seen, n, "connections the requests came in on")
			for conn, k := range seen {
				assert.Equal(t, 2, k, "requests on %p", conn)
			}
		})
	}
}
