package stream_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

const hardNS = "urn:example:hardening"

// TestHardeningErrorStanzaOfOtherKindNeverResolvesIQ is mellium's
// CVE-2024-46957 class: a <message type='error'> or <presence
// type='error'> carrying a pending IQ's id, from the IQ's addressee, must
// not be taken as the IQ's reply. It goes to the fallback; the IQ stays
// pending and is resolved by its real reply.
func TestHardeningErrorStanzaOfOtherKindNeverResolvesIQ(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cases := []struct {
		name string
		kind string // message or presence
		ns   string // the stanza's namespace as written ("" = the stream's)
		typ  string
	}{
		{"message error", "message", "", "error"},
		{"presence error", "presence", "", "error"},
		{"message error, explicit jabber:client", "message", iq.NSClient, "error"},
		{"message result", "message", "", "result"},
		{"presence result", "presence", "", "result"},
		{"iq-like element in another namespace", "iq", "urn:example:not-a-stream", "result"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			p1, p2 := net.Pipe()
			ca, cb := stream.New(p1), stream.New(p2)
			ea := iq.NewEndpoint(ca, iq.WithLocalJID("me@example.com/res"))
			eb := iq.NewEndpoint(cb)

			gotID := make(chan string, 1)
			release := make(chan struct{})
			eb.Callee.Get(hardNS, "q", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
				gotID <- req.ID
				<-release
				return iq.NewElement(hardNS, "real"), nil
			})
			fallback := make(chan *iq.Element, 4)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			serveA, serveB := make(chan error, 1), make(chan error, 1)
			go func() { serveA <- ca.Serve(ctx, ea, func(_ context.Context, el *iq.Element) { fallback <- el }) }()
			go func() { serveB <- cb.Serve(ctx, eb, nil) }()

			const peer = "juliet@capulet.example/balcony"
			done := make(chan *iq.Call, 1)
			call := ea.Caller.Go(ctx, &iq.IQ{Type: iq.TypeGet, To: peer, Payload: iq.NewElement(hardNS, "q")}, done)
			require.NoError(t, call.Err)
			var id string
			select {
			case id = <-gotID:
			case <-time.After(20 * time.Second):
				t.Fatal("request never reached the peer")
			}
			require.Equal(t, call.Request.ID, id)

			el := iq.NewElement(tc.ns, tc.kind, "type", tc.typ, "id", id, "from", peer, "to", "me@example.com/res")
			el.Append(iq.NewElement(iq.NSClient, "error", "type", "cancel").
				Append(iq.NewElement(iq.NSStanzas, "service-unavailable")))
			require.NoError(t, cb.SendElement(ctx, el))
			var fb *iq.Element
			select {
			case fb = <-fallback:
			case <-time.After(20 * time.Second):
				t.Fatal("the stanza never reached the fallback")
			}
			assert.Equal(t, tc.kind, fb.Name.Local)
			assert.Equal(t, id, fb.AttrValue("id"))
			assert.Len(t, done, 0, "a %s took as the IQ's reply", tc.name)
			assert.Equal(t, 1, ea.Caller.Pending())

			close(release)
			got := <-done
			require.NoError(t, got.Err)
			assert.Equal(t, "real", got.Response.Payload.Name.Local)
			assert.Zero(t, ea.Caller.Pending())

			require.NoError(t, ca.Close())
			assert.NoError(t, <-serveA)
			<-serveB
		})
	}
}
