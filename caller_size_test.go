package iq

import (
	"context"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCallLayout guards the size of what a pending request made by Go
// holds: a goCall is the one object such a request allocates, and 320
// bytes is a Go size class.
func TestCallLayout(t *testing.T) {
	tests := []struct {
		name string
		size uintptr
		max  uintptr
	}{
		{name: "goCall (Go, request without id)", size: unsafe.Sizeof(goCall{}), max: 320},
		{name: "Call (Go with an id, Request's pool)", size: unsafe.Sizeof(Call{}), max: 192},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.LessOrEqual(t, tt.size, tt.max)
		})
	}
	assert.Zero(t, unsafe.Offsetof(goCall{}.call), "Go's Call must be its goCall's first field")
}

// TestGoCopyKinds checks where Go puts the id of a request that has none:
// in the copy inside its own allocation, leaving the caller's IQ as it was;
// a request with an id is sent as it is.
func TestGoCopyKinds(t *testing.T) {
	tests := []struct {
		name string
		id   string
		kind callKind
	}{
		{name: "no id", id: "", kind: goCopy},
		{name: "chosen id", id: "x1", kind: goPlain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sent *IQ
			c := NewCaller(SenderFunc(func(_ context.Context, i *IQ) error { sent = i; return nil }))
			req := &IQ{Type: TypeGet, ID: tt.id, Payload: NewElement("urn:example:k", "q")}
			call := c.Go(context.Background(), req, nil)
			assert.Equal(t, tt.kind, call.kind)
			assert.Equal(t, tt.id, req.ID, "the caller's IQ is not changed")
			require.Same(t, call.Request, sent)
			if tt.id == "" {
				assert.Len(t, sent.ID, idLen)
				assert.NotSame(t, req, sent)
				g := (*goCall)(unsafe.Pointer(call))
				assert.Same(t, &g.iq, sent)
			} else {
				assert.Same(t, req, sent)
			}
			dl, ok := call.sctx.Deadline()
			assert.True(t, ok)
			assert.WithinDuration(t, time.Now().Add(DefaultTimeout), dl, 5*time.Second)
			assert.True(t, c.Receive(&IQ{Type: TypeResult, ID: sent.ID}))
			got := <-call.Done
			assert.NoError(t, got.Err)
		})
	}
}

// TestPendingHashClash runs requests whose ids all hash alike, as a
// Caller's pending table must still tell them apart by id: each is
// answered by its own response only, a duplicate id is refused, and Close
// and FailSentVia find them all.
func TestPendingHashClash(t *testing.T) {
	ids := []string{"a1", "a2", "a3", "a4"}
	tests := []struct {
		name string
		end  func(t *testing.T, c *Caller, s Sender, calls []*Call)
	}{
		{name: "answered one by one, in another order", end: func(t *testing.T, c *Caller, _ Sender, calls []*Call) {
			for _, i := range []int{2, 0, 3, 1} {
				require.True(t, c.Receive(&IQ{Type: TypeResult, ID: ids[i]}), "response to %s", ids[i])
				got := <-calls[i].Done
				assert.NoError(t, got.Err)
				assert.Equal(t, ids[i], got.Response.ID)
				assert.False(t, c.Receive(&IQ{Type: TypeResult, ID: ids[i]}), "a second response to %s", ids[i])
			}
		}},
		{name: "Close", end: func(t *testing.T, c *Caller, _ Sender, calls []*Call) {
			require.NoError(t, c.Close())
			for _, call := range calls {
				assert.ErrorIs(t, (<-call.Done).Err, ErrClosed)
			}
		}},
		{name: "FailSentVia", end: func(t *testing.T, c *Caller, s Sender, calls []*Call) {
			assert.Equal(t, len(calls), c.FailSentVia(s, nil))
			for _, call := range calls {
				assert.ErrorIs(t, (<-call.Done).Err, ErrConnectionLost)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &nopSender{}
			c := NewCaller(s)
			c.hash = func(string) uint64 { return 7 }
			var calls []*Call
			for _, id := range ids {
				calls = append(calls, c.Go(context.Background(), &IQ{Type: TypeGet, ID: id, Payload: NewElement("urn:example:h", "q")}, nil))
			}
			require.Equal(t, len(ids), c.Pending())
			dup := c.Go(context.Background(), &IQ{Type: TypeGet, ID: "a3", Payload: NewElement("urn:example:h", "q")}, nil)
			assert.ErrorIs(t, (<-dup.Done).Err, ErrDuplicateID)
			assert.False(t, c.Receive(&IQ{Type: TypeResult, ID: "a5"}), "an id nobody asked with")
			tt.end(t, c, s, calls)
			assert.Zero(t, c.Pending())
			assert.Nil(t, c.clash, "the clash table goes once empty")
		})
	}
}

// nopSender accepts every request and sends nothing; a pointer, so that
// it is comparable (FailSentVia).
type nopSender struct{}

func (*nopSender) SendIQ(context.Context, *IQ) error { return nil }

// TestGoDropsStopCache checks that a request Go started keeps no stop
// function of its Sender's AfterFunc, nor the done channel it asked for,
// once SendIQ has returned, while the function the Sender got still works,
// and the context still ends with the request.
func TestGoDropsStopCache(t *testing.T) {
	tests := []struct {
		name     string
		stopSelf bool // the Sender stops its function before returning
	}{
		{name: "stopped by the Sender", stopSelf: true},
		{name: "left registered", stopSelf: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran := make(chan struct{}, 1)
			var stop func() bool
			s := SenderFunc(func(ctx context.Context, _ *IQ) error {
				af, ok := ctx.(interface{ AfterFunc(func()) func() bool })
				require.True(t, ok, "the Caller's context has AfterFunc")
				stop = af.AfterFunc(func() { ran <- struct{}{} })
				select {
				case <-ctx.Done():
					t.Error("done before the request ended")
				default:
				}
				if tt.stopSelf {
					assert.True(t, stop())
				}
				return nil
			})
			c := NewCaller(s)
			call := c.Go(context.Background(), &IQ{Type: TypeGet, Payload: NewElement("urn:example:s", "q")}, nil)
			call.sctx.mu.Lock()
			assert.Nil(t, call.sctx.fStop, "no stop function kept")
			assert.Nil(t, call.sctx.done, "no done channel kept")
			call.sctx.mu.Unlock()
			late := call.sctx.Done() // asked again (no Sender may): made anew
			require.NoError(t, c.Close())
			assert.ErrorIs(t, (<-call.Done).Err, ErrClosed)
			<-late
			assert.ErrorIs(t, call.sctx.Err(), context.Canceled)
			if tt.stopSelf {
				assert.Empty(t, ran, "a stopped function does not run")
			} else {
				assert.Len(t, ran, 1, "a registered function runs when the request ends")
				assert.False(t, stop(), "too late to stop it")
			}
		})
	}
}

// pastCtx reports a deadline, long gone, without being done itself: a
// Context need not be done at its deadline, and the Caller must keep to
// the deadline all the same.
type pastCtx struct {
	context.Context
	at time.Time
}

func (p pastCtx) Deadline() (time.Time, bool) { return p.at, true }

// TestDeadlineExtremes checks deadlines at the ends of what an int64 of
// nanoseconds since callEpoch holds: one long past times out at once,
// one far ahead still takes a response.
func TestDeadlineExtremes(t *testing.T) {
	tests := []struct {
		name    string
		ctx     context.Context
		timeout time.Duration
		expired bool
	}{
		{name: "the zero time", ctx: pastCtx{context.Background(), time.Time{}}, expired: true},
		{name: "year 1", ctx: pastCtx{context.Background(), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)}, expired: true},
		{name: "a second ago", ctx: pastCtx{context.Background(), time.Now().Add(-time.Second)}, expired: true},
		{name: "year 9999", ctx: pastCtx{context.Background(), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{name: "the longest timeout", ctx: context.Background(), timeout: 1<<63 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewCaller(&nopSender{}, WithTimeout(tt.timeout))
			call := c.Go(tt.ctx, &IQ{Type: TypeGet, ID: "d1", Payload: NewElement("urn:example:d", "q")}, nil)
			if tt.expired {
				select {
				case got := <-call.Done:
					assert.ErrorIs(t, got.Err, ErrTimeout)
				case <-time.After(10 * time.Second):
					t.Fatal("a request whose deadline has passed is still pending")
				}
				return
			}
			dl, ok := call.sctx.Deadline()
			assert.True(t, ok)
			assert.True(t, dl.After(time.Now().Add(100*365*24*time.Hour)), "deadline %v", dl)
			assert.True(t, c.Receive(&IQ{Type: TypeResult, ID: "d1"}))
			assert.NoError(t, (<-call.Done).Err)
		})
	}
}
