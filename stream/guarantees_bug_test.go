package stream_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
)

// TestBugUnwritableReplyIsReplacedOnTheStream: a handler result that the
// writer refuses made Conn.SendIQ fail, and the peer never got an answer.
// Conn.SendIQ's error wraps iq.ErrEncode, and the Callee sends
// cancel/internal-server-error in its place; the stream stays up.
func TestBugUnwritableReplyIsReplacedOnTheStream(t *testing.T) {
	leakCheck(t)
	cases := []struct {
		name    string
		payload *iq.Element
		err     error
	}{
		{name: "payload name", payload: iq.NewElement(hNS, "bad name")},
		{name: "attribute name", payload: iq.NewElement(hNS, "bad", "a b", "v")},
		{name: "StanzaError App", err: &iq.StanzaError{Type: iq.Cancel, Condition: iq.Conflict, App: iq.NewElement("urn:test:app", "x y")}},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, rigOpts{register: func(ep *iq.Endpoint) {
				ep.Callee.Get(hNS, "bad", func(context.Context, *iq.IQ) (*iq.Element, error) { return tt.payload, tt.err })
			}})
			r.send(t, `<iq type='get' id='b1' from='peer@example.com/x'><bad xmlns='`+hNS+`'/></iq>`)
			reply := r.wire.nextIQ(t)
			assert.Equal(t, "b1", reply.ID)
			assert.Equal(t, "peer@example.com/x", reply.To)
			require.Equal(t, iq.TypeError, reply.Type, "%s", reply)
			require.NotNil(t, reply.Error)
			assert.Equal(t, iq.InternalServerError, reply.Error.Condition)
			// The stream is still usable.
			r.send(t, `<iq type='get' id='b2'><echo xmlns='`+hNS+`'>hi</echo></iq>`)
			assert.Equal(t, "b2", r.wire.nextIQ(t).ID)
		})
	}
}

// TestBugSendIQEncodeErrorWrapsErrEncode: the Callee can only tell an
// unwritable reply from a broken stream by ErrEncode, so Conn.SendIQ must
// pass it through, and write nothing.
func TestBugSendIQEncodeErrorWrapsErrEncode(t *testing.T) {
	leakCheck(t)
	r := newRig(t, rigOpts{})
	err := r.conn.SendIQ(context.Background(), &iq.IQ{Type: iq.TypeResult, ID: "x", Payload: iq.NewElement(hNS, "a b")})
	require.Error(t, err)
	assert.True(t, errors.Is(err, iq.ErrEncode), "%v", err)
	assert.NotErrorIs(t, err, iq.ErrClosed)
	r.quiesce(t)
	assert.NotContains(t, r.wire.Raw(), "a b")
}
