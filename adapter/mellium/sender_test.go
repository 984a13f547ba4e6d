package melliumiq_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/xmpp-iq/iq"
)

// lateCtx counts the calls made to it after SendIQ has returned.
type lateCtx struct {
	context.Context
	returned atomic.Bool
	late     atomic.Int32
}

func (c *lateCtx) touch() {
	if c.returned.Load() {
		c.late.Add(1)
	}
}

func (c *lateCtx) Done() <-chan struct{}       { c.touch(); return c.Context.Done() }
func (c *lateCtx) Err() error                  { c.touch(); return c.Context.Err() }
func (c *lateCtx) Deadline() (time.Time, bool) { c.touch(); return c.Context.Deadline() }
func (c *lateCtx) Value(key any) any           { c.touch(); return c.Context.Value(key) }

// TestBugSenderKeepsContext: the Sender handed its ctx to mellium, whose
// write-deadline goroutine may look at it after Send has returned (with no
// synchronisation back to SendIQ's caller), when the Callee or Caller that
// passed it may already have reused it for another IQ: a data race under
// -race as soon as replies run concurrently. And a context that mellium
// sees end just after a send makes that goroutine cut short the next
// write on the connection (i/o timeout). SendIQ must neither touch ctx
// once it has returned nor let a context it gave mellium end after.
func TestBugSenderKeepsContext(t *testing.T) {
	needServer(t)
	noLeaks(t)
	t.Run("concurrent replies", func(t *testing.T) {
		bob := login(t, "bob", func(c *iq.Callee) { c.Get(nsTest, "echo", echoHandler) }).serve()
		alice := login(t, "alice", nil).serve()
		const n = 100
		done := make(chan *iq.Call, n)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for i := range n {
			alice.a.Endpoint.Caller.Go(ctx, &iq.IQ{Type: iq.TypeGet, To: bob.jid,
				Payload: iq.NewElement(nsTest, "echo").AppendText(fmt.Sprint(i))}, done)
		}
		for range n {
			call := <-done
			if assert.NoError(t, call.Err) {
				assert.Equal(t, call.Request.Payload.Text(), call.Response.Payload.Text())
			}
		}
	})
	t.Run("contexts cancelled after each send", func(t *testing.T) {
		alice := login(t, "alice", nil).serve()
		// Concurrent senders, so that mellium's goroutines are often
		// scheduled after the send they watch.
		const senders, each = 8, 50
		ctxs := make([]*lateCtx, senders*each)
		var wg sync.WaitGroup
		for g := range senders {
			wg.Go(func() {
				for i := range each {
					base, cancel := context.WithCancel(context.Background())
					ctx := &lateCtx{Context: base}
					ctxs[g*each+i] = ctx
					// An unsolicited result: the server drops it.
					err := alice.a.Sender.SendIQ(ctx, &iq.IQ{ID: iq.NewID(), Type: iq.TypeResult, To: env.Domain})
					ctx.returned.Store(true)
					cancel()
					assert.NoError(t, err)
				}
			})
		}
		wg.Wait()
		time.Sleep(100 * time.Millisecond)
		late := 0
		for _, ctx := range ctxs {
			late += int(ctx.late.Load())
		}
		assert.Zero(t, late, "contexts used after SendIQ returned")
	})
}
