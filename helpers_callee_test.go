package iq_test

import (
	"bytes"
	"encoding/xml"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

// calleeWaitFor is how long a test waits for something that should happen
// at once; it only bounds a failing test.
const calleeWaitFor = 5 * time.Second

// nextSent returns the next IQ sent through r (see iqtest.Recorder.Next),
// failing the test if none is sent in time.
func nextSent(t *testing.T, r *iqtest.Recorder) *iq.IQ {
	t.Helper()
	q, err := r.Next(calleeWaitFor)
	require.NoError(t, err, "nothing was sent in time")
	return q
}

// calleeLogBuffer is an io.Writer for a slog handler, safe for concurrent
// use.
type calleeLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *calleeLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *calleeLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newCalleeLogger returns a logger that writes everything, from debug up,
// to the returned buffer.
func newCalleeLogger() (*slog.Logger, *calleeLogBuffer) {
	buf := new(calleeLogBuffer)
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// calleeParse decodes raw XML into an IQ, as a stream reader would.
func calleeParse(t *testing.T, raw string) *iq.IQ {
	t.Helper()
	q := new(iq.IQ)
	require.NoError(t, xml.Unmarshal([]byte(raw), q), "decoding %s", raw)
	return q
}

// calleeRoundTrip serializes q both ways the package offers (xml.Marshal
// and String, the stream writers' fast path), checks that both read back
// the same, and returns what xml.Marshal's form reads back as, with that
// form.
func calleeRoundTrip(t *testing.T, q *iq.IQ) (*iq.IQ, string) {
	t.Helper()
	b, err := xml.Marshal(q)
	require.NoError(t, err)
	back := new(iq.IQ)
	require.NoError(t, xml.Unmarshal(b, back), "decoding %s", b)

	fast := new(iq.IQ)
	require.NoError(t, xml.Unmarshal([]byte(q.String()), fast), "decoding %s", q.String())
	assert.Equal(t, back.ID, fast.ID)
	assert.Equal(t, back.Type, fast.Type)
	assert.Equal(t, back.To, fast.To)
	assert.Equal(t, back.From, fast.From)
	assert.True(t, back.Payload.Equal(fast.Payload), "payloads differ: %s vs %s", back.Payload, fast.Payload)
	assert.Equal(t, back.Error, fast.Error)
	return back, string(b)
}

// calleeAssertErrorReply checks that reply is an error reply of type typ
// and condition cond, in memory and on the wire, where the condition must
// be an element in urn:ietf:params:xml:ns:xmpp-stanzas inside <error/>.
func calleeAssertErrorReply(t *testing.T, reply *iq.IQ, typ iq.ErrorType, cond iq.Condition) {
	t.Helper()
	require.NotNil(t, reply, "want an error reply")
	assert.Equal(t, iq.TypeError, reply.Type)
	require.NotNil(t, reply.Error, "error reply without <error/>: %s", reply)
	assert.Equal(t, typ, reply.Error.Type)
	assert.Equal(t, cond, reply.Error.Condition)
	assert.Nil(t, reply.Payload, "error reply should not echo a payload")
	if reply.ID != "" { // a reply to a request without id has none either
		assert.NoError(t, reply.Validate())
	}

	back, raw := calleeRoundTrip(t, reply)
	assert.Equal(t, iq.TypeError, back.Type)
	require.NotNil(t, back.Error, "no <error/> on the wire: %s", raw)
	assert.Equal(t, typ, back.Error.Type)
	assert.Equal(t, cond, back.Error.Condition)

	var el iq.Element
	require.NoError(t, xml.Unmarshal([]byte(raw), &el))
	errEl := el.Child("", "error")
	require.NotNil(t, errEl, "no <error/> in no namespace: %s", raw)
	assert.Equal(t, string(typ), errEl.AttrValue("type"))
	assert.NotNil(t, errEl.Child(iq.NSStanzas, string(cond)),
		"no <%s xmlns='%s'/> in %s", cond, iq.NSStanzas, raw)
}

// calleeAssertResult checks that reply is a result carrying want (nil for
// an empty result), in memory and on the wire.
func calleeAssertResult(t *testing.T, reply *iq.IQ, want *iq.Element) {
	t.Helper()
	require.NotNil(t, reply, "want a result")
	assert.Equal(t, iq.TypeResult, reply.Type)
	assert.Nil(t, reply.Error)
	assert.NoError(t, reply.Validate())
	back, raw := calleeRoundTrip(t, reply)
	assert.Equal(t, iq.TypeResult, back.Type)
	if want == nil {
		assert.Nil(t, reply.Payload)
		assert.Equal(t, 0, reply.NumChildren())
		assert.Equal(t, 0, back.NumChildren(), "empty result has a child on the wire: %s", raw)
		return
	}
	assert.Same(t, want, reply.Payload, "the handler's element should be the payload")
	assert.Equal(t, 1, reply.NumChildren())
	assert.Equal(t, 1, back.NumChildren(), "wire: %s", raw)
	assert.True(t, want.Equal(back.Payload), "payload on the wire %s, want %s", back.Payload, want)
}

// calleeWaitClosed waits for ch to be closed or to receive.
func calleeWaitClosed[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(calleeWaitFor):
		require.FailNow(t, "timed out waiting: "+what)
	}
}

// calleeNoReplyFor asserts that nothing is sent within d.
func calleeNoReplyFor(t *testing.T, r *iqtest.Recorder, d time.Duration) {
	t.Helper()
	if q, err := r.Next(d); err == nil {
		assert.Fail(t, "unexpected reply", "%s", q)
	}
}
