package xmldec

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// tricky inputs, each compared with encoding/xml by differ.
var tricky = []string{
	``, ` `, `<`, `<a`, `<a `, `<a x`, `<a x=`, `<a x='`, `<a x='1`, `<a x='1'`, `<a x='1'/`, `<a/`, `<a>`, `<a></`, `<a></a`, `<a></a >`, `<a></a x>`,
	`<a x='1'y='2'/>`, `<a x = "1" />`, `<a x='<'/>`, `<a x='>'/>`, `<a x=']]>'/>`, `<a x="'"/>`, `<a x='"'/>`, `<a x='&#60;'/>`,
	"<a x='\t\n\r\n\r'/>", "<a x='a\r'/>", "<a>a\r</a>", "<a>\r", "a\r", "a\r\n", "<a>\r\r\n\n</a>",
	`<a>]]&gt;</a>`, `<a>]&#93;></a>`, `<a>]]</a>`, `<a>]</a>`, `<a>]]]></a>`, `<a><![CDATA[]]]]><![CDATA[>]]></a>`, `<a><![CDATA[`, `<a><![CDATA[x]]`, `<a><![CDAT`, `<a><![CDATx[]]></a>`,
	`<a>&lt</a>`, `<a>&lt;</a>`, `<a>&LT;</a>`, `<a>&#65</a>`, `<a>&#65;</a>`, `<a>&#x41;</a>`, `<a>&#X41;</a>`, `<a>&#;</a>`, `<a>&#x;</a>`, `<a>&;</a>`, `<a>& </a>`, `<a>&</a>`, `<a>&am`, `<a>&#`, `<a>&#x`, `<a>&#x4`,
	`<a>&#0000000000000000000000000065;</a>`, `<a>&#99999999999999999999999;</a>`, `<a>&#x110000;</a>`, `<a>&#x10FFFF;</a>`, `<a>&#xFFFE;</a>`, `<a>&#xFFFD;</a>`, `<a>&#xDFFF;</a>`, `<a>&#9;&#10;&#13;&#31;</a>`, `<a>&é;</a>`, `<a>&a:b;</a>`,
	"<a>\x00</a>", "<a>\x1f</a>", "<a>\x7f</a>", "<a>\xef\xbf\xbe</a>", "<a>\xef\xbf\xbd</a>", "<a>\xed\xa0\x80</a>", "<a>\xc0\x80</a>", "<a>\xe2\x82</a>", "<a>\xe2\x82", "\xe2\x82", "<a x='\xff'/>", "<a x='\xff", "<a>\xff&am",
	`<a:b/>`, `<a:/>`, `<:b/>`, `<:/>`, `<a::b/>`, `<a:b:c/>`, `<a b:c:d='1'/>`, `<a :b='1'/>`, `<a b:='1'/>`, `<a xmlns:='x'/>`, `<a xmlns:p=''><p:b/></a>`, `<a xmlns:p='u' p:xmlns='v'/>`, `<a xmlns:p='' p:xmlns='v'/>`, `<a xmlns:p='xmlns' p:q='v'/>`,
	`<xmlns/>`, `<xmlns:a/>`, `<a xmlns='u'><xmlns/></a>`, `<xml:a/>`, `<a xml:lang='en' xmlns:xml='foo'/>`, `<a xmlns:xmlns='x' xmlns:a='1' xmlns:a='2' a:b='c'/>`, `<a xmlns='1' xmlns='2'/>`,
	`<a xmlns:p='u'><p:b></b></a>`, `<a xmlns:p='u' xmlns:q='u'><p:b></q:b></a>`, `<a><b></c></a>`, `</a>`, `<a></a></a>`, `<a/></a>`,
	`<1a/>`, `<a 1b='2'/>`, `<-a/>`, `<.a/>`, `<a-b.c_d/>`, `<_/>`, `<é/>`, `<a é='1'/>`, "<\u0300/>", "<a\u0300/>", "<a\u00b7/>", "<\u00b7/>", "<a\u0e00/>", "<\u4e00/>", "<a\U00010000/>",
	`<?xml version="1.0" encoding="UTF-8"?><a/>`, `<?xml version="1.1"?><a/>`, `<?xml encoding="latin1"?><a/>`, `<?xml encoding='utf-8'?><a/>`, `<?xml version= '2'?><a/>`, `<?xmlx version='2'?><a/>`, `<?XML version='2'?><a/>`,
	`<a><?xml version='2'?></a>`, `<?a?><a/>`, `<?a ?><a/>`, `<?a`, `<?a ?`, `<? a?>`, `<?1?>`, `<a><?pi x?></a>`, `<?a b?c?>`,
	`<!-- c --><a/>`, `<!---->`, `<!--->-->`, `<!-- -- -->`, `<!-`, `<!-x`, `<!--`, `<a><!--x--></a>`, `<a>x<!--y-->z</a>`, `<a>x<?p?>z<![CDATA[w]]>v</a>`,
	`<!DOCTYPE a>`, `<!DOCTYPE a [<!ENTITY x "y">]>`, `<!DOCTYPE a [<!-- x -->]>`, `<!>`, `<!'>'>`, `<!a<b>>`, `<!a<!b>`, `<!a<!-b>`, `<!a<!-->-->`, `<!a "x>">`, `<a><!DOCTYPE x></a>`, `<!`,
	`<a>  </a>`, `<a><b/> <c/></a>`, `<a>&amp;&lt;&gt;&apos;&quot;</a>`, `<a b='&amp;&lt;&gt;&apos;&quot;&#65;'/>`,
	`text`, `text<a/>`, `<a/>text`, `<a/><b/>`, `</`, `</a`, `</ a>`, `< a/>`, `<a / >`, `<a/ >`, `<a x='1'x='2'/>`, `<a x='1' x='1'/>`,
}

func TestTricky(t *testing.T) {
	for _, s := range tricky {
		for _, in := range []string{s, "<r>" + s + "</r>", "<r>" + s} {
			if err := differ([]byte(in)); err != nil {
				t.Errorf("%q: %v", in, err)
			}
		}
	}
}

func TestDecodeTree(t *testing.T) {
	in := "<iq type='get' id='1' xmlns:p='urn:p'><q xmlns='urn:q' p:a='v' xml:lang='en'>a&amp;<![CDATA[b]]><!--c-->d\r\n<e/>f</q></iq>"
	var tr Tree
	if err := Decode([]byte(in), &tr); err != nil {
		t.Fatal(err)
	}
	want := &Element{
		Name: xml.Name{Local: "iq"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "get"}, {Name: xml.Name{Local: "id"}, Value: "1"}},
		Content: []Node{{Element: &Element{
			Name: xml.Name{Space: "urn:q", Local: "q"},
			Attr: []xml.Attr{{Name: xml.Name{Space: "urn:p", Local: "a"}, Value: "v"}, {Name: xml.Name{Space: xmlURL, Local: "lang"}, Value: "en"}},
			Content: []Node{
				{Text: "a&bd\n"},
				{Element: &Element{Name: xml.Name{Space: "urn:q", Local: "e"}}},
				{Text: "f"},
			},
		}}},
	}
	if !reflect.DeepEqual(tr.Root, want) {
		t.Errorf("got  %s\nwant %s", dump(tr.Root), dump(want))
	}
}

func TestStream(t *testing.T) {
	in := `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'> <iq id='1'/><stream:error/></stream:stream>`
	d := NewDecoder(strings.NewReader(in), 100)
	var kinds []Kind
	var names []xml.Name
	for {
		it, err := d.Next(nil)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, it.Kind)
		names = append(names, it.Name)
	}
	wantKinds := []Kind{KindProcInst, KindStart, KindText, KindElement, KindElement, KindEnd}
	if !reflect.DeepEqual(kinds, wantKinds) {
		t.Errorf("kinds %v, want %v", kinds, wantKinds)
	}
	if names[3] != (xml.Name{Space: "jabber:client", Local: "iq"}) || names[4] != (xml.Name{Space: "http://etherx.jabber.org/streams", Local: "error"}) {
		t.Errorf("names %v", names)
	}
}

func TestTooBig(t *testing.T) {
	in := streamHeader + `<iq id='1'/><iq id='` + strings.Repeat("x", 200) + `'/>`
	d := NewDecoder(strings.NewReader(in), 150)
	var err error
	n := 0
	for err == nil {
		_, err = d.Next(nil)
		n++
	}
	if !errors.Is(err, ErrTooBig) || n != 3 {
		t.Errorf("after %d items: %v, want ErrTooBig after 2", n-1, err)
	}
}

func TestDeep(t *testing.T) {
	const n = 200000
	in := strings.Repeat("<a>", n) + "x" + strings.Repeat("</a>", n)
	var tr Tree
	if err := Decode([]byte(in), &tr); err != nil {
		t.Fatal(err)
	}
	depth := 0
	for e := tr.Root; e != nil; depth++ {
		var next *Element
		for _, c := range e.Content {
			next = c.Element
		}
		e = next
	}
	if depth != n {
		t.Errorf("depth %d, want %d", depth, n)
	}
	// Unclosed: an error, not a crash.
	if err := Decode([]byte(strings.Repeat("<a>", n)), nil); err == nil {
		t.Error("unclosed elements decoded")
	}
}

func TestManyPrefixes(t *testing.T) {
	// Many declarations and prefixed attributes: linear, not quadratic.
	// Each prefix is declared once: declaring one twice on a tag is a
	// duplicate attribute, which the Decoder refuses.
	var b bytes.Buffer
	b.WriteString("<a")
	for i := range 20000 {
		b.WriteString(" xmlns:p")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(strconv.Itoa(i))
		b.WriteString("='u'")
	}
	b.WriteString(">")
	for i := range 20000 {
		fmt.Fprintf(&b, "<pxx%d:b pxxx%d:c='1'/>", 7*(i%2800)+2, 7*(i%2800)+3)
	}
	b.WriteString("</a>")
	if err := Decode(b.Bytes(), nil); err != nil {
		t.Fatal(err)
	}
}

// TestBugUndeclaredPrefixAndDuplicateAttributesTaken: encoding/xml takes
// <p:y/> with p unbound as namespace "p", and keeps both of two type
// attributes; the Decoder refuses both as not namespace-well-formed, in a
// stanza and in a stream header, with a syntax error.
func TestBugUndeclaredPrefixAndDuplicateAttributesTaken(t *testing.T) {
	for _, c := range []struct{ name, in, msg string }{
		{"undeclared element prefix", `<iq type='get' id='1'><p:y/></iq>`, `undeclared namespace prefix "p"`},
		{"undeclared attribute prefix", `<iq type='get' id='1'><y xmlns='u' p:a='1'/></iq>`, `undeclared namespace prefix "p"`},
		{"prefix out of scope", `<iq><a xmlns:p='u'/><p:y/></iq>`, `undeclared namespace prefix "p"`},
		{"prefix undeclared empty", `<iq xmlns:p='u'><y xmlns:p=''><p:z/></y></iq>`, `undeclared namespace prefix "p"`},
		{"xmlns element prefix", `<iq><xmlns:y/></iq>`, `undeclared namespace prefix "xmlns"`},
		{"duplicate type", `<iq type='get' id='1' type='result'/>`, `duplicate attribute "type"`},
		{"duplicate expanded name", `<iq xmlns:p='u' xmlns:q='u' p:x='1' q:x='2'/>`, `duplicate attribute "q:x"`},
		{"duplicate declaration", `<iq xmlns:p='u' xmlns:p='v'/>`, `duplicate attribute "xmlns:p"`},
		{"duplicate among many", `<iq a0='' a1='' a2='' a3='' a4='' a5='' a6='' a7='' a8='' a9='' a10='' a11='' a12='' a13='' a14='' a15='' a16='' a17='' a9=''/>`, `duplicate attribute "a9"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, in := range []string{c.in, streamHeader + c.in} {
				_, err := ourStream([]byte(in), 0, false)
				var syn *xml.SyntaxError
				if !errors.As(err, &syn) || syn.Msg != c.msg {
					t.Errorf("stream %q: error %v, want syntax error %q", in, err, c.msg)
				}
			}
			err := Decode([]byte(c.in), nil)
			var syn *xml.SyntaxError
			if !errors.As(err, &syn) || syn.Msg != c.msg {
				t.Errorf("Decode: error %v, want syntax error %q", err, c.msg)
			}
			// encoding/xml takes it: the oracle must say so.
			if v, msg := nsViolation([]byte(c.in)); v < 0 || msg != c.msg {
				t.Errorf("oracle: %d %q, want %q", v, msg, c.msg)
			}
		})
	}
	// Declared prefixes, and the same local name in two namespaces, pass.
	for _, in := range []string{
		`<iq xmlns:p='u'><p:y p:a='1' a='2'/></iq>`,
		`<iq xmlns:p='u' xmlns:q='v' p:x='1' q:x='2' xml:lang='en'/>`,
	} {
		if err := Decode([]byte(in), nil); err != nil {
			t.Errorf("%s: %v", in, err)
		}
	}
}

// TestBugXMLDeclarationErrorsUntyped: a declaration of XML 1.1 or of an
// encoding other than UTF-8 fails with encoding/xml's message and an
// error a stream can tell apart, to answer with the stream error RFC 6120
// names for each.
func TestBugXMLDeclarationErrorsUntyped(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     error
	}{
		{"version 1.1", `<?xml version='1.1'?>`, ErrUnsupportedVersion},
		{"encoding latin-1", `<?xml version='1.0' encoding='ISO-8859-1'?>`, ErrUnsupportedEncoding},
		{"encoding utf-16", `<?xml version="1.0" encoding="UTF-16"?>`, ErrUnsupportedEncoding},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ourStream([]byte(c.in+streamHeader), 0, false)
			if !errors.Is(err, c.want) {
				t.Errorf("error %v, want one wrapping %v", err, c.want)
			}
		})
	}
}
