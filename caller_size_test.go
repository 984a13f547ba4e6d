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
