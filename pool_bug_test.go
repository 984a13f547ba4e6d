package iq_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/xmpp-iq/iq"
)

// TestBugPooledCallSharedAcrossCallers: a Call that Request recycled went
// into a pool shared by every Caller, while a context callback (armed
// because the Sender watched its context) or a Receive that had looked it
// up could still read its bookkeeping under the first Caller's lock, and
// the second Caller wrote it under its own: a data race under -race.
// Each Caller now recycles only its own Calls.
func TestBugPooledCallSharedAcrossCallers(t *testing.T) {
	const goroutines, rounds = 8, 600
	callers := make([]*iq.Caller, 2)
	for i := range callers {
		var me *iq.Caller
		me = iq.NewCaller(iq.SenderFunc(func(ctx context.Context, r *iq.IQ) error {
			_ = ctx.Done() // watch the send context, as stream.Conn does
			go me.Receive(&iq.IQ{Type: iq.TypeResult, ID: r.ID})
			return nil
		}))
		callers[i] = me
		defer me.Close()
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				ctx, cancel := context.WithCancel(context.Background())
				go cancel()
				_, _ = callers[(g+i)%2].Request(ctx, &iq.IQ{Type: iq.TypeGet,
					Payload: iq.NewElement("urn:example:pool", "q")})
			}
		}()
	}
	wg.Wait()
	for _, c := range callers {
		assert.Eventually(t, func() bool { return c.Pending() == 0 }, 5*time.Second, time.Millisecond)
	}
}
