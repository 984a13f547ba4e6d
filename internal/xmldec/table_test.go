package xmldec

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"reflect"
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
	var b bytes.Buffer
	b.WriteString("<a")
	for i := range 20000 {
		b.WriteString(" xmlns:p")
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString("='u'")
	}
	b.WriteString(">")
	for range 20000 {
		b.WriteString("<pxx:b pxxx:c='1'/>")
	}
	b.WriteString("</a>")
	if err := Decode(b.Bytes(), nil); err != nil {
		t.Fatal(err)
	}
}
