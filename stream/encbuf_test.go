package stream_test

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

func TestBigBufClassBounds(t *testing.T) {
	for _, tc := range []struct {
		n, class int
	}{
		{64<<10 + 1, 0}, {256 << 10, 0}, {256<<10 + 1, 1}, {1 << 20, 1},
		{1<<20 + 1, 2}, {4 << 20, 2}, {4<<20 + 1, -1},
	} {
		assert.Equal(t, tc.class, stream.BigBufClass(tc.n), "capacity %d", tc.n)
	}
}

// TestEncodeHintFollowsTheLastStanza: a Conn starts a stanza's encoding
// in a buffer sized for the last one it encoded when that one was big,
// and forgets it after a small one.
func TestEncodeHintFollowsTheLastStanza(t *testing.T) {
	c := stream.New(discardRWC{}, stream.WithNamespace(iq.NSComponent), stream.WithLocalAddress(compDomain))
	ctx := context.Background()
	send := func(text string) {
		require.NoError(t, c.SendIQ(ctx, &iq.IQ{ID: "a", To: "user@example.org", Type: iq.TypeResult,
			Payload: iq.NewElement(hNS, "r").AppendText(text)}))
	}
	assert.Zero(t, stream.EncodeHint(c))
	send(strings.Repeat("x", 100<<10))
	assert.Greater(t, stream.EncodeHint(c), int64(100<<10))
	send("small")
	assert.Zero(t, stream.EncodeHint(c))
}

// TestBugBigStanzaEncodedIntoAFreshBufferEachTime: a stanza of hundreds
// of kilobytes was encoded into a pooled 512-byte buffer that grew by
// doubling to its size, then dropped: about twice its size allocated,
// copied and cleared per stanza. The buffer is now kept in a pool of its
// size class.
func TestBugBigStanzaEncodedIntoAFreshBufferEachTime(t *testing.T) {
	if raceEnabled {
		t.Skip("-race's sync.Pool drops items at random")
	}
	c := stream.New(discardRWC{}, stream.WithNamespace(iq.NSComponent), stream.WithLocalAddress(compDomain))
	ctx := context.Background()
	const size = 300 << 10
	out := &iq.IQ{ID: "a", To: "user@example.org", Type: iq.TypeResult,
		Payload: iq.NewElement(hNS, "r").AppendText(strings.Repeat("x", size))}
	require.NoError(t, c.SendIQ(ctx, out))
	const n = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		require.NoError(t, c.SendIQ(ctx, out))
	}
	runtime.ReadMemStats(&after)
	perSend := (after.TotalAlloc - before.TotalAlloc) / n
	t.Logf("%d bytes allocated per SendIQ of a %d-byte stanza", perSend, size)
	assert.Less(t, perSend, uint64(size/4))
}
