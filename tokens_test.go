package iq_test

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
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
		for _, tok := range toks {
			if s, ok := tok.(xml.StartElement); ok {
				// A writer that appends to one (mellium's adds id and
				// from to a stanza's) cannot reach the next one's.
				assert.Equal(t, len(s.Attr), cap(s.Attr), "<%s>'s attributes", s.Name.Local)
			}
		}
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

	t.Run("an element without attributes shares no room with the tree", func(t *testing.T) {
		p := iq.NewElement("urn:a", "q", "x", "1")
		p.Attr = p.Attr[:0] // empty, with room
		toks, err := (&iq.IQ{Type: iq.TypeGet, ID: "t3", Payload: p}).AppendTokens(nil)
		require.NoError(t, err)
		start, ok := toks[1].(xml.StartElement)
		require.True(t, ok)
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "added"}, Value: "by the writer"})
		assert.Equal(t, []xml.Attr{{Name: xml.Name{Local: "x"}, Value: "1"}}, p.Attr[:1], "the tree's array")
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

// tokenReader yields toks, then io.EOF.
type tokenReader []xml.Token

func (r *tokenReader) Token() (xml.Token, error) {
	if len(*r) == 0 {
		return nil, io.EOF
	}
	t := (*r)[0]
	*r = (*r)[1:]
	return t, nil
}

func TestIQFromTokens(t *testing.T) {
	iqName := xml.Name{Space: iq.NSClient, Local: "iq"}
	start := xml.StartElement{Name: iqName, Attr: []xml.Attr{
		{Name: xml.Name{Local: "type"}, Value: "get"}, {Name: xml.Name{Local: "id"}, Value: "f1"},
		{Name: xml.Name{Local: "from"}, Value: "a@example.net/r"},
	}}
	query := xml.Name{Space: "urn:example:q", Local: "query"}
	body := []xml.Token{
		xml.StartElement{Name: query, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: "urn:example:q"}, {Name: xml.Name{Local: "n"}, Value: "1"}}},
		xml.CharData("hi"), xml.Comment("skipped"), xml.CharData(" there"),
		xml.EndElement{Name: query},
		xml.EndElement{Name: iqName},
	}
	t.Run("reads what UnmarshalXML reads", func(t *testing.T) {
		r := tokenReader(body)
		got, err := iq.IQFromTokens(start, &r)
		require.NoError(t, err)
		want := &iq.IQ{Type: iq.TypeGet, ID: "f1", From: "a@example.net/r",
			Payload: iq.NewElement("urn:example:q", "query", "n", "1").AppendText("hi there")}
		assert.Equal(t, want.String(), got.String())
		assert.Empty(t, r, "every token up to the end element is read")

		var viaDecoder iq.IQ
		require.NoError(t, xml.Unmarshal([]byte(`<iq xmlns='jabber:client' type='get' id='f1' from='a@example.net/r'><query xmlns='urn:example:q' n='1'>hi<!--skipped--> there</query></iq>`), &viaDecoder))
		assert.Equal(t, viaDecoder.String(), got.String())
	})
	cases := []struct {
		name  string
		start xml.StartElement
		body  []xml.Token
		is    error
	}{
		{name: "not an iq", start: xml.StartElement{Name: xml.Name{Space: iq.NSClient, Local: "message"}}, body: body},
		{name: "an iq in another namespace", start: xml.StartElement{Name: xml.Name{Space: "urn:example:q", Local: "iq"}}, body: body},
		{name: "cut short", start: start, body: body[:3]},
		{name: "end that does not match", start: start, body: []xml.Token{xml.StartElement{Name: query}, xml.EndElement{Name: iqName}}},
		{name: "name that is not an NCName", start: start, body: []xml.Token{xml.StartElement{Name: xml.Name{Local: "a:b"}}, xml.EndElement{Name: xml.Name{Local: "a:b"}}, xml.EndElement{Name: iqName}}},
		{name: "undeclared prefix", start: start, body: []xml.Token{xml.StartElement{Name: xml.Name{Space: "p", Local: "a"}}, xml.EndElement{Name: xml.Name{Space: "p", Local: "a"}}, xml.EndElement{Name: iqName}}},
		{name: "error of the reader", start: start, body: nil, is: errReader},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r xml.TokenReader
			if tc.is != nil {
				r = failingReader{}
			} else {
				tr := tokenReader(tc.body)
				r = &tr
			}
			got, err := iq.IQFromTokens(tc.start, r)
			assert.Nil(t, got)
			require.Error(t, err)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
		})
	}
}

var errReader = errors.New("reader failed")

type failingReader struct{}

func (failingReader) Token() (xml.Token, error) { return nil, errReader }

// TestBugXMLPrefixAttrRenamed: an attribute whose Space is the prefix xml
// (as a program may build one), which AppendXML writes as xml:lang, went
// to encoding/xml's Encoder as it was, from MarshalXML and AppendTokens:
// the Encoder declared "xml" as a namespace of its own and wrote
// _xml:lang, another attribute. Every encoder now writes the XML
// namespace's lang.
func TestBugXMLPrefixAttrRenamed(t *testing.T) {
	payload := iq.NewElement("urn:a", "q")
	payload.Attr = append(payload.Attr, xml.Attr{Name: xml.Name{Space: "xml", Local: "lang"}, Value: "fr"})
	in := &iq.IQ{Type: iq.TypeGet, ID: "x1", Payload: payload}
	encoders := map[string]func() ([]byte, error){
		"AppendXML":    func() ([]byte, error) { return in.AppendXML(nil) },
		"xml.Marshal":  func() ([]byte, error) { return xml.Marshal(in) },
		"AppendTokens": func() ([]byte, error) { return encodeTokens(in) },
	}
	for name, enc := range encoders {
		t.Run(name, func(t *testing.T) {
			b, err := enc()
			require.NoError(t, err)
			el, err := iq.ParseElement(b)
			require.NoError(t, err, "%s", b)
			got, err := iq.IQFromElement(el)
			require.NoError(t, err)
			require.NotNil(t, got.Payload)
			assert.Equal(t, []xml.Attr{{Name: xml.Name{Space: "http://www.w3.org/XML/1998/namespace", Local: "lang"}, Value: "fr"}},
				got.Payload.Attr, "%s", b)
		})
	}
}

// TestBugUnmarshalRefusedAlteredStart: IQFromTokens's check that end
// elements match their starts ran for encoding/xml's Decoder too, and
// refused an <iq> whose start the caller had altered before DecodeElement
// (its namespace cleared), which the Decoder itself lets through.
func TestBugUnmarshalRefusedAlteredStart(t *testing.T) {
	d := xml.NewDecoder(strings.NewReader(`<iq xmlns='jabber:client' type='get' id='1'><q xmlns='urn:a'/></iq>`))
	tok, err := d.Token()
	require.NoError(t, err)
	start := tok.(xml.StartElement)
	start.Name.Space = ""
	var got iq.IQ
	require.NoError(t, d.DecodeElement(&got, &start))
	assert.Equal(t, "1", got.ID)
}

func TestIQFromTokensReaderEdges(t *testing.T) {
	start := xml.StartElement{Name: xml.Name{Space: iq.NSClient, Local: "iq"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "result"}, {Name: xml.Name{Local: "id"}, Value: "e1"}}}
	t.Run("the last token with io.EOF", func(t *testing.T) {
		// A TokenReader may return its last token together with io.EOF,
		// which a Decoder over it takes.
		got, err := iq.IQFromTokens(start, &lastWithEOF{toks: []xml.Token{xml.EndElement{Name: start.Name}}})
		require.NoError(t, err)
		assert.Equal(t, "e1", got.ID)
		var viaDecoder iq.IQ
		require.NoError(t, xml.NewTokenDecoder(&lastWithEOF{toks: []xml.Token{start, xml.EndElement{Name: start.Name}}}).Decode(&viaDecoder))
		assert.Equal(t, viaDecoder.String(), got.String())
	})
	t.Run("an end that names another namespace", func(t *testing.T) {
		r := tokenReader{xml.EndElement{Name: xml.Name{Local: "iq"}}}
		_, err := iq.IQFromTokens(start, &r)
		var syn *xml.SyntaxError
		require.ErrorAs(t, err, &syn)
		assert.Contains(t, syn.Msg, `closed by </iq xmlns="">`)
	})
}

// TestBugDuplicateAttrsWritten: a tree built by hand with one attribute
// twice (or the prefix xml and the XML namespace for one name) was written
// as it was, a start tag that is not well-formed, which ends the stream
// at the peer. Every writer now refuses it (FuzzEncodersAgree found it).
func TestBugDuplicateAttrsWritten(t *testing.T) {
	const xmlNS = "http://www.w3.org/XML/1998/namespace"
	cases := map[string][]xml.Attr{
		"same name":            {{Name: xml.Name{Local: "a"}}, {Name: xml.Name{Local: "a"}, Value: "2"}},
		"same namespace":       {{Name: xml.Name{Space: "urn:p", Local: "a"}}, {Name: xml.Name{Local: "b"}}, {Name: xml.Name{Space: "urn:p", Local: "a"}}},
		"xml prefix and URL":   {{Name: xml.Name{Space: "xml", Local: "lang"}, Value: "en"}, {Name: xml.Name{Space: xmlNS, Local: "lang"}, Value: "fr"}},
		"one twice among many": manyAttrs(20, "a7"),
		"xml prefix and URL among many": append(manyAttrs(20, "a7")[:20],
			xml.Attr{Name: xml.Name{Space: "xml", Local: "lang"}}, xml.Attr{Name: xml.Name{Space: xmlNS, Local: "lang"}}),
	}
	for name, attrs := range cases {
		t.Run(name, func(t *testing.T) {
			child := iq.NewElement("urn:a", "c")
			child.Attr = attrs
			assertEveryWriterRefuses(t, iq.NewElement("urn:a", "q").Append(child))
		})
	}
	t.Run("distinct names pass", func(t *testing.T) {
		p := iq.NewElement("urn:a", "q", "a", "1", "b", "2")
		p.Attr = append(p.Attr, xml.Attr{Name: xml.Name{Space: "urn:p", Local: "a"}, Value: "3"},
			xml.Attr{Name: xml.Name{Space: "xmlns", Local: "p"}, Value: "urn:p"}, // a declaration: not written
			xml.Attr{Name: xml.Name{Space: "xmlns", Local: "p"}, Value: "urn:p"})
		_, err := (&iq.IQ{Type: iq.TypeResult, ID: "d", Payload: p}).AppendXML(nil)
		assert.NoError(t, err)
	})
}

// manyAttrs returns n attributes a0, a1…, then dup again.
func manyAttrs(n int, dup string) []xml.Attr {
	var attrs []xml.Attr
	for i := range n {
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: fmt.Sprintf("a%d", i)}})
	}
	return append(attrs, xml.Attr{Name: xml.Name{Local: dup}})
}

// TestBugWrittenNotAsGiven: trees built by hand that every writer wrote,
// but that did not read back as given. A namespace holding a NUL (a
// character XML cannot carry) was replaced in writing, or, below an
// element in the XML namespace, taken for the writer's own marker and not
// declared at all, so that the element took the stream's namespace. An
// element named xmlns in a namespace reads back in none. Every writer
// now refuses both (FuzzEncodersAgree, after a review).
func TestBugWrittenNotAsGiven(t *testing.T) {
	const xmlNS = "http://www.w3.org/XML/1998/namespace"
	cases := map[string]*iq.Element{
		"NUL namespace below the XML namespace": iq.NewElement(xmlNS, "x").Append(iq.NewElement("\x00", "b")),
		"NUL namespace":                         iq.NewElement("urn:a\x00", "q"),
		"attribute in a namespace holding U+FFFE": func() *iq.Element {
			e := iq.NewElement("urn:a", "q")
			e.Attr = []xml.Attr{{Name: xml.Name{Space: "urn:\uFFFE", Local: "a"}, Value: "v"}}
			return e
		}(),
		"element xmlns in a namespace": iq.NewElement("urn:a", "q").Append(iq.NewElement("urn:b", "xmlns")),
	}
	for name, payload := range cases {
		t.Run(name, func(t *testing.T) { assertEveryWriterRefuses(t, payload) })
	}
	t.Run("element xmlns in no namespace, or in the XML namespace, reads back", func(t *testing.T) {
		in := &iq.IQ{Type: iq.TypeResult, ID: "w", Payload: iq.NewElement("urn:a", "q").
			Append(iq.NewElement("", "xmlns"), iq.NewElement(xmlNS, "xmlns"))}
		b, err := in.AppendXML(nil)
		require.NoError(t, err)
		el, err := iq.ParseElement(b)
		require.NoError(t, err)
		got, err := iq.IQFromElement(el)
		require.NoError(t, err)
		assert.True(t, in.Payload.Equal(got.Payload), "wrote %s", b)
	})
}

// assertEveryWriterRefuses checks that AppendXML, AppendTokens (with
// ErrEncode) and xml.Marshal refuse a result carrying payload.
func assertEveryWriterRefuses(t *testing.T, payload *iq.Element) {
	t.Helper()
	in := &iq.IQ{Type: iq.TypeResult, ID: "w", Payload: payload}
	_, err := in.AppendXML(nil)
	assert.ErrorIs(t, err, iq.ErrEncode, "AppendXML")
	_, err = in.AppendTokens(nil)
	assert.ErrorIs(t, err, iq.ErrEncode, "AppendTokens")
	_, err = xml.Marshal(in)
	assert.Error(t, err, "xml.Marshal")
}
