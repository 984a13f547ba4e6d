package xmldec

import (
	"encoding/xml"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// xmlNamed reports whether encoding/xml reads doc without error and its
// first element, or that element's first attribute when attr is set, has
// exactly the local name want in no namespace or in "u".
func xmlNamed(doc, want string, attr bool) bool {
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
	return n.Local == want && (n.Space == "" || n.Space == "u")
}

// oursNamed is xmlNamed for this package's Decoder.
func oursNamed(doc, want string, attr bool) bool {
	var tr Tree
	if err := Decode([]byte(doc), &tr); err != nil || tr.Root == nil {
		return false
	}
	n := tr.Root.Name
	if attr {
		if len(tr.Root.Attr) == 0 {
			return false
		}
		n = tr.Root.Attr[len(tr.Root.Attr)-1].Name
	}
	return n.Local == want && (n.Space == "" || n.Space == "u")
}

// codePoint returns r as UTF-8; a surrogate, which UTF-8 cannot hold, as
// the three bytes a careless encoder would produce.
func codePoint(r rune) string {
	if utf8.ValidRune(r) {
		return string(r)
	}
	return string([]byte{0xE0 | byte(r>>12), 0x80 | byte(r>>6)&0x3F, 0x80 | byte(r)&0x3F})
}

// TestNameTableBMP is the proof that the Decoder takes exactly the names
// encoding/xml takes, without a colon: for every code point of the BMP, in
// first and in later position, as an element name, a prefixed element name
// and an attribute name, its verdict and IsNCName's equal encoding/xml's on
// <X/> and <aX/>. Names such as U+3007 or ones holding U+0387 were refused
// before, ending the stream they came on. Under the race detector it takes
// a sample (see sweep); a plain go test run checks every code point.
func TestNameTableBMP(t *testing.T) {
	var bad int
	for r := rune(0); r <= 0xFFFF; r++ {
		if !sweep(r) {
			continue
		}
		x := codePoint(r)
		for _, name := range []string{x, "a" + x} {
			want := r != ':' && xmlNamed("<"+name+"/>", name, false)
			if IsNCName(name) != want {
				t.Errorf("U+%04X: IsNCName(%q) = %v, encoding/xml: %v", r, name, !want, want)
				bad++
			}
			for _, doc := range []struct {
				doc  string
				attr bool
			}{
				{"<" + name + "/>", false},
				{"<p:" + name + " xmlns:p='u'/>", false},
				{"<e " + name + "='1'/>", true},
				{"<e xmlns:p='u' p:" + name + "='1'/>", true},
			} {
				if got := oursNamed(doc.doc, name, doc.attr); got != want {
					t.Errorf("U+%04X: decoding %q: name read %v, encoding/xml: %v", r, doc.doc, got, want)
					bad++
				}
			}
			if bad > 20 {
				t.Fatal("too many failures")
			}
		}
		if want, got := r != ':' && xmlNamed("<"+x+"/>", x, false), IsNCNameStart(r); utf8.ValidRune(r) && got != want {
			t.Errorf("U+%04X: IsNCNameStart = %v, want %v", r, got, want)
		}
		if want, got := r != ':' && xmlNamed("<a"+x+"/>", "a"+x, false), IsNCNameChar(r); utf8.ValidRune(r) && got != want {
			t.Errorf("U+%04X: IsNCNameChar = %v, want %v", r, got, want)
		}
	}
}

// TestNameTableAboveBMP: XML 1.0's Appendix B holds no character above the
// BMP, and neither does the table; encoding/xml agrees on a sample.
func TestNameTableAboveBMP(t *testing.T) {
	for r := rune(0x10000); r <= unicode.MaxRune; r++ {
		if IsNCNameStart(r) || IsNCNameChar(r) {
			t.Fatalf("U+%X in the name table", r)
		}
		if r%251 != 0 {
			continue
		}
		for _, name := range []string{string(r), "a" + string(r)} {
			if xmlNamed("<"+name+"/>", name, false) || oursNamed("<"+name+"/>", name, false) || IsNCName(name) {
				t.Errorf("U+%X taken in %q", r, name)
			}
		}
	}
}

// TestIsNCNameCases spells out the cases the issue named, beside the
// exhaustive proof.
func TestIsNCNameCases(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{name: "ideographic number zero U+3007", in: "〇", want: true},
		{name: "extender U+0387 after the first", in: "a\u0387", want: true},
		{name: "extender U+0387 first", in: "\u0387a", want: false},
		{name: "extender U+00B7 after the first", in: "a\u00b7", want: true},
		{name: "CJK", in: "日本", want: true},
		{name: "letter outside Appendix B (U+0221)", in: "\u0221", want: false},
		{name: "colon", in: "a:b", want: false},
		{name: "leading colon", in: ":a", want: false},
		{name: "digit first", in: "1a", want: false},
		{name: "invalid UTF-8", in: "a\xff", want: false},
		{name: "U+FFFD", in: "a\ufffd", want: false},
		{name: "above the BMP", in: "a\U00010000", want: false},
		{name: "empty", in: "", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsNCName(tt.in); got != tt.want {
				t.Errorf("IsNCName(%q) = %v, want %v", tt.in, got, tt.want)
			}
			if xml := !strings.Contains(tt.in, ":") && xmlNamed("<"+tt.in+"/>", tt.in, false); xml != tt.want {
				t.Errorf("encoding/xml disagrees on %q", tt.in)
			}
		})
	}
}

// isName is also checked against encoding/xml on qualified names, where
// colons may stand anywhere.
func TestIsNameQualified(t *testing.T) {
	for _, s := range []string{":", "a:", ":a", "a:b", "a:b:c", "〇:\u0387", "a:\u0387", "\u0387:a", "a\xff:b", "a:1", "_:-"} {
		_, err := xml.NewDecoder(strings.NewReader("<?" + s + "?>")).RawToken()
		if got, want := isName([]byte(s)), err == nil; got != want {
			t.Errorf("isName(%q) = %v, encoding/xml: %v", s, got, want)
		}
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

// BenchmarkNonASCIINames decodes a stanza whose element and attribute
// names are not ASCII: each was once checked by a round trip through
// encoding/xml, now by the name table.
func BenchmarkNonASCIINames(b *testing.B) {
	var s strings.Builder
	s.WriteString("<iq type='get' id='1'><données xmlns='urn:x'>")
	for i := 0; i < 50; i++ {
		s.WriteString("<日 ñ\u00b7='1'><日本 a\u00b7b='2'/></日>")
	}
	s.WriteString("</données></iq>")
	in := []byte(s.String())
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		var tr Tree
		if err := Decode(in, &tr); err != nil {
			b.Fatal(err)
		}
	}
}
