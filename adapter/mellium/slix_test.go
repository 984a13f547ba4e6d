package melliumiq_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/internal/servertest"
)

const nsPeer = "urn:example:peer" // what scripts/slixpeer.py answers

// iqTags returns the start tags of the <iq> elements in wire (what a
// session wrote or read) whose id is id, in either quoting.
func iqTags(wire, id string) []string {
	var tags []string
	for rest := wire; ; {
		i := strings.Index(rest, "<iq")
		if i < 0 {
			return tags
		}
		rest = rest[i:]
		end := strings.IndexByte(rest, '>')
		if end < 0 {
			return tags
		}
		tag := rest[:end+1]
		if strings.Contains(tag, `id="`+id+`"`) || strings.Contains(tag, `id='`+id+`'`) {
			tags = append(tags, tag)
		}
		rest = rest[end+1:]
	}
}

// settle waits long enough for a second reply, were one written after the
// first, to reach the tee.
func settle() { time.Sleep(300 * time.Millisecond) }

// A slixmpp client's gets and sets reach our Callee, through the server,
// and each gets exactly one reply on the wire: ours, never mellium's
// automatic service-unavailable.
func TestSlixmppCallsAdapter(t *testing.T) {
	needServer(t)
	noLeaks(t)
	bob := login(t, "bob", func(c *iq.Callee) {
		c.Get(nsTest, "echo", echoHandler)
		c.Get(nsTest, "fail", failHandler)
	}).serve()
	alice := servertest.StartPeer(t, env, "alice")

	cases := []struct {
		name    string
		payload string
		check   func(t *testing.T, r servertest.Line)
	}{
		{"custom get answered by our handler", `<echo xmlns='` + nsTest + `'>hi &amp; bye</echo>`, func(t *testing.T, r servertest.Line) {
			require.Equal(t, "result", r.Type, "%+v", r)
			assert.Contains(t, r.Payload, "hi &amp; bye")
			assert.Contains(t, r.Payload, nsTest)
		}},
		{"handler's stanza error intact", `<fail xmlns='` + nsTest + `'/>`, func(t *testing.T, r servertest.Line) {
			require.Equal(t, "error", r.Type, "%+v", r)
			assert.Equal(t, "modify", r.ErrorType)
			assert.Equal(t, "not-acceptable", r.Condition)
			assert.Equal(t, "not today", r.Text)
			assert.Equal(t, nsTestErr, r.AppNS)
			assert.Equal(t, "too-late", r.AppName)
		}},
		{"unknown namespace is our feature-not-implemented", `<query xmlns='urn:example:nobody-home'/>`, func(t *testing.T, r servertest.Line) {
			require.Equal(t, "error", r.Type, "%+v", r)
			assert.Equal(t, "cancel", r.ErrorType)
			assert.Equal(t, "feature-not-implemented", r.Condition, "mellium's own answer would be service-unavailable")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := alice.Call("get", bob.jid, tc.payload, 10*time.Second)
			tc.check(t, r)
			assert.Equal(t, []int{1}, bob.repliesTo(r.ID), "bob's IQs with id %s: %q", r.ID, iqTags(bob.out.String(), r.ID))
			assert.Len(t, iqTags(bob.in.String(), r.ID), 1, "bob read the request %s once", r.ID)
		})
	}
	assert.Empty(t, bob.logs.Matching("dropped"), "bob dropped responses")
}

// TestBugClientRepliesCarryFrom: the Callee's replies went out with from
// set to the request's to. A client's server stamps the bound address on
// what the client sends; the adapter writes no from on a client stream.
func TestBugClientRepliesCarryFrom(t *testing.T) {
	needServer(t)
	noLeaks(t)
	bob := login(t, "bob", func(c *iq.Callee) { c.Get(nsTest, "echo", echoHandler) }).serve()
	alice := servertest.StartPeer(t, env, "alice")

	r := alice.Call("get", bob.jid, `<echo xmlns='`+nsTest+`'>x</echo>`, 10*time.Second)
	require.Equal(t, "result", r.Type, "%+v", r)
	require.Equal(t, []int{1}, bob.repliesTo(r.ID))
	tags := iqTags(bob.out.String(), r.ID)
	assert.NotContains(t, tags[0], "from=", "reply written with a from: %s", tags[0])

	// Our requests carry none either, and are answered.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := iq.NewID()
	_, err := bob.a.Endpoint.Caller.Request(ctx, &iq.IQ{ID: id, Type: iq.TypeGet, To: env.Domain,
		Payload: iq.NewElement(nsPing, "ping")})
	require.NoError(t, err)
	tags = iqTags(bob.out.String(), id)
	require.Len(t, tags, 1)
	assert.NotContains(t, tags[0], "from=")
}

// Our Caller's gets to a slixmpp client, through the server: a result, a
// stanza error as *iq.StanzaError, and a timeout as iq.ErrTimeout.
func TestAdapterCallsSlixmpp(t *testing.T) {
	needServer(t)
	noLeaks(t)
	alice := login(t, "alice", nil).serve()
	bob := servertest.StartPeer(t, env, "bob")
	caller := alice.a.Endpoint.Caller

	servertest.CallPeer(t, caller, bob.JID, nsPeer, func(t *testing.T, err error) {
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
	assert.Empty(t, alice.logs.Matching("dropped"), "alice dropped responses")
}

// The local JID is the bound one: the server's answers for the account
// itself (no from on Prosody, the bare JID on ejabberd, to a request with
// no to; the bare JID from both to one sent to the bare JID) are accepted.
func TestLocalJIDFromBoundResource(t *testing.T) {
	needServer(t)
	noLeaks(t)
	alice := login(t, "alice", nil).serve()
	bare := strings.SplitN(alice.jid, "/", 2)[0]
	require.Equal(t, "alice@"+env.Domain, bare)
	for _, to := range []string{"", bare, env.Domain} {
		t.Run("ping to "+to, func(t *testing.T) {
			_, err := alice.a.Endpoint.Caller.Get(servertest.Ctx(t, 10*time.Second), to, iq.NewElement(nsPing, "ping"))
			assert.NoError(t, err)
		})
	}
	assert.Empty(t, alice.logs.Matching("dropped"), "alice dropped responses")
}
