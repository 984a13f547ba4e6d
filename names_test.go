package iq_test

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/internal/xmldec"
)

// xmlLocal reports whether encoding/xml reads doc without error and its
// first element, or that element's last attribute when attr is set, is
// named local, in no namespace or in "u".
func xmlLocal(doc, local string, attr bool) bool {
	tok, err := xml.NewDecoder(strings.NewReader(doc)).Token()
	if err != nil {
		return false
	}
	se, ok := tok.(xml.StartElement)
	if !ok {
		return false
	}
	n := se.Name
	if attr {
		if len(se.Attr) == 0 {
			return false
		}
		n = se.Attr[len(se.Attr)-1].Name
	}
	return n.Local == local && (n.Space == "" || n.Space == "u")
}

// xmlNCName is encoding/xml's verdict on local as an NCName: a name it
// reads whole, without a colon.
func xmlNCName(local string) bool {
	return !strings.Contains(local, ":") && xmlLocal("<"+local+"/>", local, false)
}

// appends reports whether AppendXML writes an element named local, and one
// with an attribute named local, as XML that encoding/xml reads back to the
// same names; it fails the test when the two verdicts differ. With all set,
// MarshalXML (through xml.Marshal) and MarshalElement must agree too.
func appends(t *testing.T, local string, all bool) bool {
	t.Helper()
	el := iq.NewElement("u", local)
	at := iq.NewElement("u", "e", local, "1")
	verdict := -1
	for _, c := range []struct {
		e    *iq.Element
		attr bool
	}{{el, false}, {at, true}} {
		writers := []func(*iq.Element) ([]byte, error){
			func(e *iq.Element) ([]byte, error) { return e.AppendXML(nil) },
		}
		if all {
			writers = append(writers, func(e *iq.Element) ([]byte, error) { return xml.Marshal(e) })
		}
		for w, write := range writers {
			out, err := write(c.e)
			ok := err == nil
			if ok && !xmlLocal(string(out), local, c.attr) {
				t.Errorf("writer %d wrote %q for %q, which encoding/xml reads otherwise", w, out, local)
			}
			if verdict >= 0 && ok != (verdict == 1) {
				t.Errorf("writers disagree on %q (attribute: %v)", local, c.attr)
			}
			verdict = map[bool]int{false: 0, true: 1}[ok]
		}
	}
	if all {
		v := struct{ XMLName xml.Name }{xml.Name{Space: "u", Local: local}}
		e, err := iq.MarshalElement(&v)
		if ok := err == nil && e.Name.Local == local; ok != (verdict == 1) {
			t.Errorf("MarshalElement takes %q: %v, AppendXML: %v", local, ok, verdict == 1)
		}
	}
	return verdict == 1
}

// TestBugWriterNameTableBMP proves the writer writes exactly the names
// encoding/xml reads: for every code point of the BMP, first and after
// another character, as an element and as an attribute name, AppendXML's
// verdict is encoding/xml's (MarshalXML's and MarshalElement's too, on
// every 16th code point: they share AppendXML's check, and encoding/xml's
// encoder is slow). The writer used to refuse U+3007 and names holding
// U+0387, which the decoder must take, and to write letters XML 1.0 does
// not know. Under the race detector it takes a sample (see sweep); a plain
// go test run checks every code point.
func TestBugWriterNameTableBMP(t *testing.T) {
	for r := rune(0); r <= 0xFFFF; r++ {
		if !sweep(r) {
			continue
		}
		x := string(r)
		if !utf8.ValidRune(r) {
			x = string([]byte{0xE0 | byte(r>>12), 0x80 | byte(r>>6)&0x3F, 0x80 | byte(r)&0x3F})
		}
		for _, local := range []string{x, "a" + x} {
			want := xmlNCName(local)
			if got := appends(t, local, r%16 == 0); got != want {
				t.Fatalf("U+%04X: the writer takes %q: %v, encoding/xml: %v", r, local, got, want)
			}
		}
	}
}

// names lists the qualified names of doc's elements and attributes as
// encoding/xml reads them, namespace declarations left out.
func names(t *testing.T, doc []byte) []xml.Name {
	t.Helper()
	var out []xml.Name
	d := xml.NewDecoder(strings.NewReader(string(doc)))
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err, "%s", doc)
		if se, ok := tok.(xml.StartElement); ok {
			out = append(out, se.Name)
			for _, a := range se.Attr {
				if a.Name.Space != "xmlns" && a.Name != (xml.Name{Local: "xmlns"}) {
					out = append(out, a.Name)
				}
			}
		}
	}
}

const xmlNS = "http://www.w3.org/XML/1998/namespace"

// TestBugXMLNamespaceElementWrittenWithPrefix: an element in the XML
// namespace was written as <foo xmlns="http://www.w3.org/XML/1998/namespace"/>,
// a declaration XML Namespaces forbid and servers refuse. Both writers now
// use the xml prefix, declare nothing, and keep the children's default
// namespace.
func TestBugXMLNamespaceElementWrittenWithPrefix(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []xml.Name // as encoding/xml reads the input
	}{
		{
			name: "the issue's payload",
			in:   `<xml:foo xml:lang='en'><bar/></xml:foo>`,
			want: []xml.Name{{Space: xmlNS, Local: "foo"}, {Space: xmlNS, Local: "lang"}, {Local: "bar"}},
		},
		{
			name: "below a default namespace",
			in:   `<a xmlns='urn:a'><xml:foo><bar/></xml:foo><baz/></a>`,
			want: []xml.Name{{Space: "urn:a", Local: "a"}, {Space: xmlNS, Local: "foo"}, {Space: "urn:a", Local: "bar"}, {Space: "urn:a", Local: "baz"}},
		},
		{
			name: "child in no namespace below a default one",
			in:   `<a xmlns='urn:a'><xml:foo><bar xmlns=''/></xml:foo></a>`,
			want: []xml.Name{{Space: "urn:a", Local: "a"}, {Space: xmlNS, Local: "foo"}, {Local: "bar"}},
		},
		{
			name: "child in another namespace",
			in:   `<xml:foo><bar xmlns='urn:b'><baz/></bar></xml:foo>`,
			want: []xml.Name{{Space: xmlNS, Local: "foo"}, {Space: "urn:b", Local: "bar"}, {Space: "urn:b", Local: "baz"}},
		},
		{
			name: "nested",
			in:   `<xml:foo><xml:bar xml:space='preserve'>t</xml:bar></xml:foo>`,
			want: []xml.Name{{Space: xmlNS, Local: "foo"}, {Space: xmlNS, Local: "bar"}, {Space: xmlNS, Local: "space"}},
		},
		{
			name: "another prefix for the XML namespace",
			in:   `<p:foo xmlns:p='http://www.w3.org/XML/1998/namespace' p:lang='en'/>`,
			want: []xml.Name{{Space: xmlNS, Local: "foo"}, {Space: xmlNS, Local: "lang"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, names(t, []byte(tt.in)), "encoding/xml's reading of the input")
			in, err := iq.ParseElement([]byte(tt.in))
			require.NoError(t, err)
			appended, err := in.AppendXML(nil)
			require.NoError(t, err)
			marshaled, err := xml.Marshal(in)
			require.NoError(t, err)
			for _, out := range [][]byte{appended, marshaled, []byte(in.String())} {
				assert.NotContains(t, string(out), `xmlns="`+xmlNS, "the XML namespace is never declared")
				assert.NotContains(t, string(out), `xmlns:xml=`, "the XML namespace is never declared")
				assert.Equal(t, tt.want, names(t, out), "encoding/xml's reading of %s", out)
				back, err := iq.ParseElement(out)
				require.NoError(t, err, "%s", out)
				assert.True(t, in.Equal(back), "same Infoset after %s", out)
				var viaXML iq.Element
				require.NoError(t, xml.Unmarshal(out, &viaXML), "%s", out)
				assert.True(t, in.Equal(&viaXML), "same Infoset through encoding/xml after %s", out)
			}
		})
	}
}

// TestBugXMLNSNamespaceRefused: nothing is written in the xmlns namespace,
// whose attributes are declarations; both writers refuse with ErrInvalid
// rather than bind a prefix or the default namespace to it.
func TestBugXMLNSNamespaceRefused(t *testing.T) {
	const xmlnsNS = "http://www.w3.org/2000/xmlns/"
	tests := []struct {
		name string
		el   *iq.Element
	}{
		{name: "element", el: iq.NewElement(xmlnsNS, "foo")},
		{name: "element with the xmlns prefix", el: &iq.Element{Name: xml.Name{Space: "xmlns", Local: "foo"}}},
		{name: "attribute", el: &iq.Element{Name: xml.Name{Space: "urn:a", Local: "a"}, Attr: []xml.Attr{{Name: xml.Name{Space: xmlnsNS, Local: "p"}, Value: "urn:p"}}}},
		{name: "child", el: iq.NewElement("urn:a", "a").Append(iq.NewElement(xmlnsNS, "b"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.el.AppendXML(nil)
			assert.ErrorIs(t, err, iq.ErrInvalid)
			_, err = xml.Marshal(tt.el)
			assert.ErrorIs(t, err, iq.ErrInvalid)
			assert.True(t, strings.HasPrefix(tt.el.String(), "<!--"), tt.el.String())
		})
	}
}

// sweep reports whether the BMP sweeps check r: every code point, or under
// the race detector every 16th, ASCII and the ones the issue named.
func sweep(r rune) bool {
	switch {
	case !raceEnabled, r < 0x80, r%16 == 0:
		return true
	}
	switch r {
	case 0x00B7, 0x0221, 0x0387, 0x3007:
		return true
	}
	return false
}

// fuzzName turns fuzz input into a name: the bytes themselves (mode 0, any
// byte string), or runes three bytes each, anywhere in Unicode (mode 1) or
// in the BMP (mode 2), surrogates as the three bytes UTF-8 forbids.
func fuzzName(data []byte, mode uint8) string {
	if mode%3 == 0 {
		return string(data)
	}
	var b []byte
	for i := 0; i+3 <= len(data) && i < 3*64; i += 3 {
		r := rune(data[i])<<16 | rune(data[i+1])<<8 | rune(data[i+2])
		if mode%3 == 1 {
			r %= unicode.MaxRune + 1
		} else {
			r &= 0xFFFF
		}
		if utf8.ValidRune(r) {
			b = utf8.AppendRune(b, r)
		} else {
			b = append(b, 0xE0|byte(r>>12), 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
		}
	}
	return string(b)
}

// firstStart returns doc's first start element as encoding/xml reads it,
// or the token and error that stopped it first.
func firstStart(doc string) (xml.Token, error) {
	d := xml.NewDecoder(strings.NewReader(doc))
	for {
		tok, err := d.Token()
		if _, ok := tok.(xml.StartElement); ok || err != nil {
			return tok, err
		}
	}
}

// FuzzName checks that the decoder, the writer and encoding/xml agree on
// names across the whole of Unicode: an NCName for the decoder (as an
// element, attribute or prefixed name) is exactly one encoding/xml reads
// whole, without a colon, and exactly one the writers write.
func FuzzName(f *testing.F) {
	for _, s := range []string{"a", "〇", "a\u0387", "\u0387", "a\u00b7b", "日本", "données", "e\u0301", "_", "1", "-a", ":", "a:b", ":a", "a:", "a:b:c", "a b", "a>", "\xff", "a\xed\xa0\x80", "a\ufffd", "a\U00010000", "\u0221", "xml", "xmlns"} {
		f.Add([]byte(s), uint8(0))
	}
	f.Add([]byte{0x00, 0x30, 0x07, 0x00, 0x03, 0x87}, uint8(2))
	f.Add([]byte{0x01, 0x00, 0x00, 0x00, 0x00, 0x61}, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		local := fuzzName(data, mode)
		if local == "xmlns" || strings.HasPrefix(local, "xmlns:") {
			return // a namespace declaration, not a name
		}
		want := xmlNCName(local)
		if got := xmldec.IsNCName(local); got != want {
			t.Fatalf("IsNCName(%q) = %v, encoding/xml: %v", local, got, want)
		}
		if got := appends(t, local, true); got != want {
			t.Fatalf("the writers take %q: %v, encoding/xml: %v", local, got, want)
		}
		if strings.Contains(local, ":") {
			// A qualified name: the decoder may take it only where
			// encoding/xml does, and takes p:l with both parts NCNames
			// and p declared.
			doc := "<" + local + "/>"
			if e, err := iq.ParseElement([]byte(doc)); err == nil {
				// The first element, as xml.Unmarshal finds it: what
				// comes before (a directive, say: "<!:><A/>") is not it.
				tok, err := firstStart(doc)
				if se, ok := tok.(xml.StartElement); err != nil || !ok || se.Name != e.Name {
					t.Fatalf("the decoder reads %q as %v, encoding/xml as %v (%v)", doc, e.Name, tok, err)
				}
			}
			p, l, _ := strings.Cut(local, ":")
			if xmlNCName(p) && xmlNCName(l) {
				doc := "<" + local + " xmlns:" + p + "='u'/>"
				e, err := iq.ParseElement([]byte(doc))
				if assert.NoError(t, err, doc) {
					assert.Equal(t, xml.Name{Space: "u", Local: l}, e.Name, doc)
				}
			}
			return
		}
		for _, c := range []struct {
			doc  string
			attr bool
		}{
			{"<" + local + "/>", false},
			{"<p:" + local + " xmlns:p='u'/>", false},
			{"<e " + local + "='1'/>", true},
			{"<e xmlns:p='u' p:" + local + "='1'/>", true},
		} {
			got := false
			if e, err := iq.ParseElement([]byte(c.doc)); err == nil {
				n := e.Name
				if c.attr && len(e.Attr) > 0 {
					n = e.Attr[len(e.Attr)-1].Name
				}
				got = (!c.attr || len(e.Attr) > 0) && n.Local == local && (n.Space == "" || n.Space == "u")
			}
			if got != want {
				t.Fatalf("the decoder takes %q with the name %q: %v, encoding/xml: %v", c.doc, local, got, want)
			}
		}
	})
}
