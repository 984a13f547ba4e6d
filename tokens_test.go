package iq_test

import (
	"encoding/xml"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xmpp-iq/iq"
)

func TestAppendTokens(t *testing.T) {
	payload := iq.NewElement("urn:example:q", "query", "node", "n1").
		Append(iq.NewElement("", "bare").AppendText("a<b"))
	in := &iq.IQ{Type: iq.TypeGet, ID: "t1", To: "b@example.net", Lang: "en", Payload: payload}

	t.Run("appends after what toks holds", func(t *testing.T) {
		toks, err := in.AppendTokens([]xml.Token{xml.Comment("before")})
		require.NoError(t, err)
		require.NotEmpty(t, toks)
		assert.Equal(t, xml.Comment("before"), toks[0])
		start, ok := toks[1].(xml.StartElement)
		require.True(t, ok, "second token %T", toks[1])
		assert.Equal(t, xml.Name{Local: "iq"}, start.Name, "the <iq> takes its stream's namespace")
		assert.Equal(t, xml.EndElement{Name: xml.Name{Local: "iq"}}, toks[len(toks)-1])
	})

	t.Run("a child in no namespace leaves its parent's", func(t *testing.T) {
		toks, err := in.AppendTokens(nil)
		require.NoError(t, err)
		var bare xml.StartElement
		for _, tok := range toks {
			if s, ok := tok.(xml.StartElement); ok && s.Name.Local == "bare" {
				bare = s
			}
		}
		assert.Equal(t, xml.Name{Local: "bare"}, bare.Name)
		assert.Contains(t, bare.Attr, xml.Attr{Name: xml.Name{Local: "xmlns"}, Value: ""})
	})

	t.Run("attributes are the tokens' own", func(t *testing.T) {
		toks, err := in.AppendTokens(nil)
		require.NoError(t, err)
		for _, tok := range toks {
			if s, ok := tok.(xml.StartElement); ok {
				for i := range s.Attr {
					s.Attr[i] = xml.Attr{Name: xml.Name{Local: "changed"}, Value: "by the writer"}
				}
			}
		}
		assert.Equal(t, []xml.Attr{{Name: xml.Name{Local: "node"}, Value: "n1"}}, payload.Attr)
		assert.Equal(t, "en", in.Lang)
		again, err := in.AppendTokens(nil)
		require.NoError(t, err)
		assert.Equal(t, xml.StartElement{Name: xml.Name{Local: "iq"}, Attr: []xml.Attr{
			{Name: xml.Name{Local: "type"}, Value: "get"},
			{Name: xml.Name{Local: "id"}, Value: "t1"},
			{Name: xml.Name{Local: "to"}, Value: "b@example.net"},
			{Name: xml.Name{Space: "http://www.w3.org/XML/1998/namespace", Local: "lang"}, Value: "en"},
		}}, again[0])
	})

	t.Run("an IQ that cannot be written", func(t *testing.T) {
		bad := &iq.IQ{Type: iq.TypeGet, ID: "t2", Payload: iq.NewElement("urn:example:q", "no good")}
		prefix := []xml.Token{xml.Comment("before")}
		toks, err := bad.AppendTokens(prefix)
		require.Error(t, err)
		assert.ErrorIs(t, err, iq.ErrEncode)
		assert.Equal(t, prefix, toks, "toks comes back as it was given")
		_, appendErr := bad.AppendXML(nil)
		assert.ErrorIs(t, appendErr, iq.ErrEncode, "AppendXML refuses it too")
	})
}
