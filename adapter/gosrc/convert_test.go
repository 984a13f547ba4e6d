package gosrciq_test

import (
	"encoding/xml"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gosrc.io/xmpp/stanza"

	"github.com/xmpp-iq/iq"
	gosrciq "github.com/xmpp-iq/iq/adapter/gosrc"
)

// ToIQ rebuilds what gosrc decoded: attributes, payloads of its own types
// and unknown ones, and stanza errors.
func TestToIQ(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		check func(t *testing.T, got *iq.IQ)
	}{
		{"unknown payload with attributes and escaped text",
			`<iq xmlns="jabber:client" id="a&amp;1" type="get" from="x@y/z" to="y"><echo xmlns="urn:t" k="v&lt;">hi &amp; bye</echo></iq>`,
			func(t *testing.T, got *iq.IQ) {
				assert.Equal(t, "a&1", got.ID)
				assert.Equal(t, iq.TypeGet, got.Type)
				assert.Equal(t, "x@y/z", got.From)
				assert.Equal(t, "y", got.To)
				require.NotNil(t, got.Payload)
				assert.Equal(t, xml.Name{Space: "urn:t", Local: "echo"}, got.Payload.Name)
				assert.Equal(t, "hi & bye", got.Payload.Text())
				assert.Contains(t, got.Payload.String(), `v&lt;`)
			}},
		{"payload gosrc decodes into its own type",
			`<iq xmlns="jabber:client" id="b" type="result" from="y"><query xmlns="jabber:iq:version"><name>Prosody</name><version>13</version></query></iq>`,
			func(t *testing.T, got *iq.IQ) {
				require.NotNil(t, got.Payload)
				assert.Equal(t, "jabber:iq:version", got.Payload.Name.Space)
				assert.Contains(t, got.Payload.String(), "Prosody")
				assert.Contains(t, got.Payload.String(), "13")
			}},
		{"stanza error keeps type, condition and text",
			`<iq xmlns="jabber:client" id="c" type="error" from="y"><error type="modify"><not-acceptable xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">no &amp; never</text></error></iq>`,
			func(t *testing.T, got *iq.IQ) {
				assert.Equal(t, iq.TypeError, got.Type)
				se := got.Error
				require.NotNil(t, se)
				assert.Equal(t, iq.Modify, se.Type)
				assert.Equal(t, iq.NotAcceptable, se.Condition)
				assert.Equal(t, "no & never", se.Text)
			}},
		{"empty result",
			`<iq xmlns="jabber:client" id="d" type="result" from="y"/>`,
			func(t *testing.T, got *iq.IQ) {
				assert.Equal(t, iq.TypeResult, got.Type)
				assert.Nil(t, got.Payload)
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := stanza.NextPacket(xml.NewDecoder(strings.NewReader(tc.in)))
			require.NoError(t, err)
			got := gosrciq.ToIQ(p)
			require.NotNil(t, got)
			tc.check(t, got)
		})
	}
	assert.Nil(t, gosrciq.ToIQ(stanza.Message{}), "a message is no IQ")
}

// BenchmarkToIQ rebuilds a roster result of ten items that gosrc decoded:
// the adapter's share of reading a stanza.
//
//	go test -run '^$' -bench ToIQ -benchmem ./adapter/gosrc
func BenchmarkToIQ(b *testing.B) {
	var in strings.Builder
	in.WriteString(`<iq xmlns="jabber:client" id="r1" type="result" from="example.net" to="a@example.net/r"><query xmlns="jabber:iq:roster" ver="v1">`)
	for i := range 10 {
		fmt.Fprintf(&in, `<item jid='user%d@example.net' name='User %d' subscription='both'><group>Friends</group></item>`, i, i)
	}
	in.WriteString(`</query></iq>`)
	p, err := stanza.NextPacket(xml.NewDecoder(strings.NewReader(in.String())))
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if got := gosrciq.ToIQ(p); got == nil || got.Payload == nil {
			b.Fatal("no IQ")
		}
	}
}
