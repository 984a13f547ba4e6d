package iq_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/xmpp-iq/iq"
)

// TestBugRecycledCallRacesAcrossCallers: when a request's own context
// ended, the callback that watches it could still be running, reading the
// Call under its Caller's mutex, after Request had put the Call back in
// the pool, and another Caller could take it and write it under its own
// (a data race, seen with -race by stream's ping tests). A Call whose
// callback could not be stopped is no longer recycled.
func TestBugRecycledCallRacesAcrossCallers(t *testing.T) {
	// A Sender that watches the context, as stream.Conn's writes do.
	watch := iq.SenderFunc(func(ctx context.Context, _ *iq.IQ) error {
		_ = ctx.Done()
		return nil
	})
	var wg sync.WaitGroup
	for range 4 {
		c := iq.NewCaller(watch)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Microsecond)
				_, err := c.Request(ctx, &iq.IQ{Type: iq.TypeGet, To: "peer@example.org", Payload: iq.NewElement("urn:test", "q")})
				cancel()
				assert.ErrorIs(t, err, iq.ErrTimeout)
			}
		}()
	}
	wg.Wait()
}
