package goxmppiq_test

import (
	"encoding/xml"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xmppo/go-xmpp"

	"github.com/xmpp-iq/iq"
	goxmppiq "github.com/xmpp-iq/iq/adapter/goxmpp"
)

// marshalled is what go-xmpp's Recv puts in IQ.Query for a payload: the
// element it decoded, marshalled again.
func marshalled(t testing.TB, payload string) []byte {
	t.Helper()
	var v struct {
		XMLName xml.Name        `xml:"jabber:client iq"`
		Query   xmpp.XMLElement `xml:",any"`
	}
	require.NoError(t, xml.Unmarshal([]byte("<iq xmlns='jabber:client'>"+payload+"</iq>"), &v))
	b, err := xml.Marshal(v.Query)
	require.NoError(t, err)
	return b
}

// TestBugGoXMPPPayloadHasTwoXMLNS: go-xmpp marshals a payload with its
// namespace written twice (as the name's space and as a kept attribute),
// which no XML parser accepts; every request then got bad-request.
func TestBugGoXMPPPayloadHasTwoXMLNS(t *testing.T) {
	q := marshalled(t, `<echo xmlns='urn:x' a='1'>hi &amp; bye</echo>`)
	require.Contains(t, string(q), `xmlns="urn:x" xmlns="urn:x"`, "go-xmpp fixed it: drop this workaround")
	in := goxmppiq.ToIQ(xmpp.IQ{ID: "1", From: "a@b/c", Type: "get", Query: q})
	require.NotNil(t, in)
	require.NotNil(t, in.Payload)
	assert.Equal(t, xml.Name{Space: "urn:x", Local: "echo"}, in.Payload.Name)
	assert.Equal(t, "hi & bye", in.Payload.Text())
}

// What Recv returns becomes the IQ it was, or nothing.
func TestToIQ(t *testing.T) {
	cases := []struct {
		name  string
		v     any
		check func(t *testing.T, in *iq.IQ)
	}{
		{"get with payload", xmpp.IQ{ID: "g", From: "a@b/c", To: "d@b/e", Type: "get",
			Query: marshalled(t, `<q xmlns='urn:x'><i n='1'/></q>`)}, func(t *testing.T, in *iq.IQ) {
			require.NotNil(t, in)
			assert.Equal(t, iq.TypeGet, in.Type)
			assert.Equal(t, "g", in.ID)
			assert.Equal(t, "a@b/c", in.From)
			assert.Equal(t, "d@b/e", in.To)
			require.NotNil(t, in.Payload)
			assert.Equal(t, "urn:x", in.Payload.Name.Space)
		}},
		{"self-closed payload", xmpp.IQ{ID: "s", Type: "set", Query: []byte(`<q xmlns="urn:x" xmlns="urn:x"/>`)}, func(t *testing.T, in *iq.IQ) {
			require.NotNil(t, in)
			require.NotNil(t, in.Payload)
			assert.Equal(t, "q", in.Payload.Name.Local)
		}},
		{"empty result", xmpp.IQ{ID: "r", From: "b", Type: "result", Query: []byte("<XMLElement></XMLElement>")}, func(t *testing.T, in *iq.IQ) {
			require.NotNil(t, in)
			assert.Equal(t, iq.TypeResult, in.Type)
			assert.Nil(t, in.Payload)
		}},
		{"stanza error", xmpp.IQ{ID: "e", From: "b", Type: "error", Query: []byte("<XMLElement></XMLElement>"),
			Error: xmpp.IQError{Type: "cancel", Condition: "item-not-found", Text: "no <such> thing"}}, func(t *testing.T, in *iq.IQ) {
			require.NotNil(t, in)
			require.NotNil(t, in.Error)
			assert.Equal(t, iq.Cancel, in.Error.Type)
			assert.Equal(t, iq.ItemNotFound, in.Error.Condition)
			assert.Equal(t, "no <such> thing", in.Error.Text)
		}},
		{"disco info result", xmpp.DiscoResult{ID: "d", From: "b", Features: []string{"urn:xmpp:ping"},
			Identities: []xmpp.DiscoIdentity{{Category: "server", Type: "im", Name: "B & co"}}}, func(t *testing.T, in *iq.IQ) {
			require.NotNil(t, in)
			assert.Equal(t, iq.TypeResult, in.Type)
			require.NotNil(t, in.Payload)
			assert.Equal(t, "http://jabber.org/protocol/disco#info", in.Payload.Name.Space)
			assert.Contains(t, in.Payload.String(), "urn:xmpp:ping")
		}},
		{"disco items result", xmpp.DiscoItems{ID: "i", Jid: "b", Items: []xmpp.DiscoItem{{Jid: "x.b", Name: "X"}}}, func(t *testing.T, in *iq.IQ) {
			require.NotNil(t, in)
			assert.Equal(t, "b", in.From)
			require.NotNil(t, in.Payload)
			assert.Contains(t, in.Payload.String(), "x.b")
		}},
		{"undecodable get still a request", xmpp.IQ{ID: "u", From: "a", Type: "get", Query: []byte(`<p:q>`)}, func(t *testing.T, in *iq.IQ) {
			require.NotNil(t, in)
			assert.Equal(t, iq.TypeGet, in.Type)
			assert.Nil(t, in.Payload)
		}},
		{"undecodable result dropped", xmpp.IQ{ID: "u", Type: "result", Query: []byte(`<p:q>`)}, func(t *testing.T, in *iq.IQ) {
			assert.Nil(t, in)
		}},
		{"message is not an IQ", xmpp.Chat{Text: "hi"}, func(t *testing.T, in *iq.IQ) {
			assert.Nil(t, in)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, goxmppiq.ToIQ(tc.v)) })
	}
}

// BenchmarkToIQ rebuilds a roster result of ten items that go-xmpp's Recv
// decoded: the adapter's share of reading a stanza.
//
//	go test -run '^$' -bench ToIQ -benchmem ./adapter/goxmpp
func BenchmarkToIQ(b *testing.B) {
	var items strings.Builder
	for i := range 10 {
		fmt.Fprintf(&items, `<item jid='user%d@example.net' name='User %d' subscription='both'><group>Friends</group></item>`, i, i)
	}
	v := xmpp.IQ{ID: "r1", From: "example.net", To: "a@example.net/r", Type: "result",
		Query: marshalled(b, `<query xmlns='jabber:iq:roster' ver='v1'>`+items.String()+`</query>`)}
	b.ReportAllocs()
	for b.Loop() {
		if in := goxmppiq.ToIQ(v); in == nil || in.Payload == nil {
			b.Fatal("no IQ")
		}
	}
}
