package iq_test

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/xmpp-iq/iq"
)

// Vocabularies the built trees draw from: the names and text a program may
// put in a tree by hand, the awkward ones included (reserved prefixes and
// namespaces, names that are not NCNames, characters XML cannot carry).
var (
	fuzzSpaces = []string{"", "urn:a", "urn:b", "xml", "http://www.w3.org/XML/1998/namespace",
		"xmlns", "http://www.w3.org/2000/xmlns/", "p", "jabber:client", "a0", "\x00", "urn:\uFFFE"}
	fuzzLocals = []string{"a", "b", "lang", "xmlns", "iq", "x:y", "", "é", "1a"}
	fuzzTexts  = []string{"", "t", `<&>"'`, "\t\n\r", "]]>", "\x00", "\uFFFE", "é\u00a0", " "}
)

// builtTree makes an element from data, as a program building one by hand
// might: each byte picks the next name, attribute, text or child.
type builtTree struct {
	data []byte
	n    int // elements made so far
}

func (b *builtTree) next() int {
	if len(b.data) == 0 {
		return 0
	}
	c := int(b.data[0])
	b.data = b.data[1:]
	return c
}

func (b *builtTree) element(depth int) *iq.Element {
	b.n++
	c := b.next()
	e := &iq.Element{Name: xml.Name{Space: fuzzSpaces[c%len(fuzzSpaces)], Local: fuzzLocals[(c/len(fuzzSpaces))%len(fuzzLocals)]}}
	attrs := b.next()
	if attrs >= 250 {
		attrs = 20 // past checkUniqueAttrs's pairwise limit
	}
	if attrs != 20 {
		attrs %= 4
	}
	for range attrs {
		c := b.next()
		e.Attr = append(e.Attr, xml.Attr{
			Name:  xml.Name{Space: fuzzSpaces[c%len(fuzzSpaces)], Local: fuzzLocals[(c/len(fuzzSpaces))%len(fuzzLocals)]},
			Value: fuzzTexts[b.next()%len(fuzzTexts)],
		})
	}
	for range b.next() % 4 {
		c := b.next()
		if c%2 == 0 && depth < 4 && b.n < 32 {
			e.Content = append(e.Content, iq.Node{Element: b.element(depth + 1)})
		} else {
			e.Content = append(e.Content, iq.Node{Text: fuzzTexts[(c/2)%len(fuzzTexts)]})
		}
	}
	return e
}

// FuzzEncodersAgree builds trees by hand, not by decoding, and checks that
// the package's three writers agree on them: AppendXML (the stream's),
// MarshalXML (xml.Marshal) and AppendTokens written by encoding/xml's
// Encoder (a token stack's, such as mellium's). Either all refuse the IQ,
// or each writes XML that the package's own decoder reads back as the
// tree given (up to what XML cannot carry as it is: see written).
func FuzzEncodersAgree(f *testing.F) {
	// Arbitrary bytes to start from; testdata keeps the inputs that
	// failed once (an attribute given twice).
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{3, 1, 13, 2, 0, 2, 14, 0})
	f.Add([]byte{9, 0, 2, 0, 1, 2, 0, 0, 2, 2, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		b := &builtTree{data: data}
		in := &iq.IQ{Type: iq.TypeResult, ID: "f", Payload: b.element(0)}
		fast, fastErr := in.AppendXML(nil)
		std, stdErr := xml.Marshal(in)
		toks, toksErr := encodeTokens(in)
		if (stdErr == nil) != (toksErr == nil) {
			t.Fatalf("MarshalXML: %v; AppendTokens: %v; for %s", stdErr, toksErr, fast)
		}
		if (fastErr == nil) != (stdErr == nil) {
			t.Fatalf("AppendXML: %v; MarshalXML: %v; for %s", fastErr, stdErr, fast)
		}
		if fastErr != nil {
			return
		}
		read := func(name string, b []byte) *iq.IQ {
			el, err := iq.ParseElement(b)
			if err != nil {
				t.Fatalf("%s wrote what does not read back: %v\n%s", name, err, b)
			}
			got, err := iq.IQFromElement(el)
			if err != nil {
				t.Fatalf("%s: %v\n%s", name, err, b)
			}
			return got
		}
		// What is written reads back as the tree given, but for what XML
		// cannot carry as it is (see written).
		want := written(in.Payload)
		for name, out := range map[string][]byte{"AppendXML": fast, "MarshalXML": std, "AppendTokens": toks} {
			if got := read(name, out); !want.Equal(got.Payload) {
				t.Fatalf("%s does not read back as the tree given:\ngiven: %#v\nwrote: %s", name, want, out)
			}
		}
	})
}

// written returns e as the writers write it: namespace declarations in
// Attr dropped (names carry their namespaces), the prefix xml as an
// attribute's Space taken for the XML namespace, and each character XML
// cannot carry, in text or an attribute's value, replaced by U+FFFD.
func written(e *iq.Element) *iq.Element {
	out := &iq.Element{Name: e.Name}
	for _, a := range e.Attr {
		if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
			continue
		}
		if a.Name.Space == "xml" {
			a.Name.Space = "http://www.w3.org/XML/1998/namespace"
		}
		a.Value = scrub(a.Value)
		out.Attr = append(out.Attr, a)
	}
	for _, n := range e.Content {
		if n.Element != nil {
			out.Content = append(out.Content, iq.Node{Element: written(n.Element)})
		} else {
			out.Content = append(out.Content, iq.Node{Text: scrub(n.Text)})
		}
	}
	return out
}

// scrub replaces each character XML 1.0 cannot carry, and each byte that
// is not UTF-8, with U+FFFD.
func scrub(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		ok := !(r == utf8.RuneError && w == 1) && (r == 0x09 || r == 0x0A || r == 0x0D ||
			r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF)
		if ok {
			b.WriteString(s[i : i+w])
		} else {
			b.WriteRune(utf8.RuneError)
		}
		i += w
	}
	return b.String()
}

// FuzzIQFromTokens hands IQFromTokens token streams built from fuzz bytes,
// as another stack's reader might yield them, broken ones included: ends
// that match no start, a reader that stops early or returns a token with
// an error, comments and processing instructions, names in no namespace
// or undeclared ones, text no XML decoder yields. It must not panic; what
// it reads must be an IQ that AppendXML writes (when its names can be
// written) and that reads back as read, up to what XML cannot carry (see
// written).
func FuzzIQFromTokens(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7})
	f.Add([]byte{0, 0, 1, 1, 3, 2, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		b := &builtTree{data: data}
		start := xml.StartElement{Name: xml.Name{Space: iq.NSClient, Local: "iq"}, Attr: []xml.Attr{
			{Name: xml.Name{Local: "type"}, Value: "result"}, {Name: xml.Name{Local: "id"}, Value: "t"}}}
		r := &fuzzTokens{b: b, open: []xml.Name{start.Name}}
		got, err := iq.IQFromTokens(start, r)
		if err != nil {
			return
		}
		out, err := got.AppendXML(nil)
		if err != nil {
			return // read as given, but not writable: a name no XML decoder yields
		}
		el, err := iq.ParseElement(out)
		if err != nil {
			t.Fatalf("IQFromTokens read what AppendXML writes as XML that does not parse: %v\n%s", err, out)
		}
		again, err := iq.IQFromElement(el)
		if err != nil {
			t.Fatal(err)
		}
		if got.Payload != nil && !written(got.Payload).Equal(again.Payload) || got.NumChildren() != again.NumChildren() {
			t.Fatalf("read back otherwise:\n%s", out)
		}
	})
}

// fuzzTokens yields tokens chosen by b's bytes: mostly well-formed, its
// ends matching its starts, with some of every kind of fault.
type fuzzTokens struct {
	b    *builtTree
	open []xml.Name
}

func (r *fuzzTokens) Token() (xml.Token, error) {
	if len(r.b.data) == 0 {
		return nil, io.EOF
	}
	c := r.b.next()
	name := func() xml.Name {
		d := r.b.next()
		return xml.Name{Space: fuzzSpaces[d%len(fuzzSpaces)], Local: fuzzLocals[(d/len(fuzzSpaces))%len(fuzzLocals)]}
	}
	switch c % 16 {
	case 0, 1, 2:
		s := xml.StartElement{Name: name()}
		for range r.b.next() % 3 {
			s.Attr = append(s.Attr, xml.Attr{Name: name(), Value: fuzzTexts[r.b.next()%len(fuzzTexts)]})
		}
		r.open = append(r.open, s.Name)
		return s, nil
	case 3, 4, 5, 6:
		if len(r.open) == 0 {
			return nil, io.EOF
		}
		e := xml.EndElement{Name: r.open[len(r.open)-1]}
		r.open = r.open[:len(r.open)-1]
		if len(r.open) == 0 && c%32 == 3 {
			return e, io.EOF // the last token, with io.EOF
		}
		return e, nil
	case 7, 8, 9:
		return xml.CharData(fuzzTexts[r.b.next()%len(fuzzTexts)]), nil
	case 10:
		return xml.Comment("c"), nil
	case 11:
		return xml.ProcInst{Target: "p", Inst: []byte("i")}, nil
	case 12:
		return xml.EndElement{Name: name()}, nil // an end that may match nothing
	case 13:
		return nil, errors.New("reader failed")
	default:
		return xml.CharData("x"), nil
	}
}
