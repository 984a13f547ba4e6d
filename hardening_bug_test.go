package iq_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

// TestHardeningBugDeadlineDuringSendIsNotErrTimeout: a request whose
// context deadline passes while the Sender is still writing it (a
// congested stream) fails with "iq: send …: context deadline exceeded",
// which does not match iq.ErrTimeout, although Request promises that the
// wait ends at ctx's deadline with an error matching both. A caller that
// tests errors.Is(err, iq.ErrTimeout) misses these timeouts, about half of
// them: Go's finish for the send error races the context.AfterFunc that
// start armed, and whichever runs first decides the error.
func TestHardeningBugDeadlineDuringSendIsNotErrTimeout(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	rec := iqtest.NewRecorder()
	rec.OnSend(func(ctx context.Context, _ *iq.IQ) error {
		<-ctx.Done() // a stream too busy to take the stanza before the deadline
		return ctx.Err()
	})
	c := iq.NewCaller(rec)
	defer c.Close()
	// Which error wins is a race between the Caller's own context.AfterFunc
	// (ErrTimeout) and the Sender's return (not ErrTimeout): try often.
	notTimeout := 0
	var example error
	for range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Millisecond)
		_, err := c.Request(ctx, &iq.IQ{Type: iq.TypeGet, To: "peer.example", Payload: iq.NewElement(hardeningNS, "q")})
		cancel()
		require.Error(t, err)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		if !errors.Is(err, iq.ErrTimeout) {
			notTimeout++
			example = err
		}
	}
	assert.Zero(t, c.Pending())
	assert.Zero(t, notTimeout, "%d of 100 deadlines during the send are not ErrTimeout, e.g. %v", notTimeout, example)
}
