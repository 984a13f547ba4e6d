package xmldec

import (
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"time"
)

var fastPathInputs = []string{
	`<a b='x&lt;y'/>`, `<a b='&lt'/>`, `<a b='&lt;'/>`, `<a b='&lt;`, `<a>x]]>y</a>`, `<a>]]&gt;</a>`, `<a>]&#93;></a>`,
	`<a b="1"c="2"/>`, `<a b = '1' />`, `<a/ >`, `<a></a >`, `<a></ a>`, `<1a/>`, `<a 1b='x'/>`, `<a b='x>y'/>`,
	`<a b='x"y'/>`, `<a b="x'y"/>`, `<a>&amp;&amp</a>`, `<a>&ampx;</a>`, `<a>&lt</a>`, `<a>&#x3c;</a>`, `<a>&apos;x</a>`,
	`<a.b-c1/>`, `<a- b='1'/>`, `<a b:c='1'/>`, `<a xmlns:b='u' b:c='1' c='2'/>`, `<a xml:lang='en'/>`, `<xml/>`, `<xmlns/>`,
	"<a\x00/>", "<a b='\x01'/>", "<a b='\t\n'/>", "<a b='\r'/>", "<a b='\r\n'/>", `<a b='1' b='2'/>`, `<a b='1' c='2' b='3'/>`,
	`<b b='1'/>`, `<b xmlns='u' b='1'><b/></b><b/>`, `<a xmlns='u'/><a/>`, `<a/><a xmlns='u'/><a/>`, `<a xmlns:p='u' p:b='1' b='2'/>`,
	`<a b='1'xmlns='u'/>`, `<a xmlns='u'b='1'/>`, `<a>x</a\x00>`, `<a>x</b>`, `<a><b>x</b ></a>`, `<a><b>x</bb></a>`, `<a><bb>x</b></a>`,
	`<a>&quot;&apos;&gt;&lt;&amp;</a>`, `<a b='&quot;&apos;&gt;&lt;&amp;'/>`, `<a>&quo;</a>`, `<a>&aposx</a>`, `<a>&gt</a>`, `<a>&gtt;</a>`,
	"<a>\u00e9</a>", "<a b='\u00e9'/>", "<a>\xc3</a>", "<a b='\xc3'/>", "<a>\uFFFE</a>", "<a b='\uFFFF'/>", "<a\u00e9/>", "<\u00e9a/>",
	"<a b\u00e9='1'/>", "<a \u00e9b='1'/>", "<a><b\u0300/></a>", "<a><\u0300b/></a>", `<a><_b/></a>`, `<a><-b/></a>`, `<a><.b/></a>`, `<a><9b/></a>`,
	`<a b='1' _c='2' d.e='3' f-g='4' h9='5'/>`, `<a b='1' -c='2'/>`, `<a b='1' 9c='2'/>`, `<a b='1' .c='2'/>`, `<a :b='1'/>`, `<a b:='1'/>`,
	`<a xmlns:b='u'><b:c/></a>`, `<a xmlns:b='u'><b:c></b:c></a>`, `<a xmlns:b='u'><b:c></c></a>`, `<a xmlns:b='u'><c></b:c></a>`,
	`<a xmlns='u'><xmlns/></a>`, `<a xmlns=''/>`, `<a xmlns:xmlns='u'/>`, `<a xmlns:xml='u'/>`, `<a xml:b='1' xml:b='2'/>`,
	`<a><b/><b/></a>`, `<a>text<!--c-->text</a>`, `<a>t<![CDATA[x]]>t</a>`, `<a>t<![CDATA[x]]>]]></a>`, `<a>t<?p?>]]></a>`,
	// End tags the fast path of an open element's name, then >, takes or leaves.
	`<ab></a>`, `<a></ab>`, `<a></a`, `<a></`, `<a><b></b></a >`, `<p:a xmlns:p='u'></p:a>`, `<p:a xmlns:p='u'></a>`,
	`<p:a xmlns:p='u' xmlns:q='u'></q:a>`, `<a><a></a></a>`, `<a><a></a></aa>`, "<a></a\t>", "<a></a\n>",
	// Plain start tags with one default namespace declaration among their attributes.
	`<a xmlns='u' b='1'/>`, `<a b='1' xmlns='u' c='2'><c xmlns='v'/><c/></a><c/>`, `<a xmlns='u' xmlns='v'/>`,
	`<a xmlns='u' b='1' b='2'/>`, `<xmlns xmlns='u'/>`, `<a xmlns='&amp;&#x3c;'/>`, `<a xmlns='u'><b xmlns=''><c/></b><c/></a>`,
	`<a xmlns='u' xmlns:p='v'><p:b/></a>`, `<a xmlns='u' p:b='1'/>`, `<a xmlns="u"b='1'/>`, `<a xmlns='u' id='x'><b id='y' xmlns='u'/></a>`,
	// More attributes than the small set the plain path keeps on the stack.
	manyAttrs(17, 0) + `<c/></a>`, manyAttrs(17, 17) + `<c/></a>`, manyAttrs(20, 9) + `<c xmlns=''/></a>`,
	manyAttrs(16, 16) + `</a>`, manyAttrs(17, -1) + `</a>`,
}

// manyAttrs is an open start tag <a ...> with n attributes b0..b(n-1) and
// a default namespace declaration before the attribute at index at (none
// when at is negative, after the last when at is n).
func manyAttrs(n, at int) string {
	var sb strings.Builder
	sb.WriteString("<a")
	for i := 0; i <= n; i++ {
		if i == at {
			sb.WriteString(" xmlns='u'")
		}
		if i < n {
			fmt.Fprintf(&sb, " b%d='%d'", i, i)
		}
	}
	sb.WriteString(">")
	return sb.String()
}

// TestFastPathEdges holds the fast paths of tags, attribute values,
// character data and entities to encoding/xml on the inputs that sit at
// their edges.
func TestFastPathEdges(t *testing.T) {
	for _, s := range fastPathInputs {
		if err := differ([]byte(s)); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
}

var gramElems = []string{"a", "b", "iq", "xmlns", "p:a", "q:b", "p:iq", "xml:a", "c1", "_d"}
var gramAttrs = []string{"a", "b", "id", "p:a", "q:a", "xml:lang", "xmlns", "xmlns:p", "xmlns:q", "x.y", "a-b"}
var gramValues = []string{"", "u", "v", "urn:p", "x&amp;y", "&lt;", "\u00e9", "'", ">", "1"}

func gramStanza(rng *rand.Rand, sb *strings.Builder, depth int) {
	name := gramElems[rng.Intn(len(gramElems))]
	sb.WriteString("<" + name)
	for i := rng.Intn(4); i > 0; i-- {
		sp := []string{" ", "  ", "\n", ""}[rng.Intn(4)]
		if sp == "" && rng.Intn(3) != 0 {
			sp = " "
		}
		q := []string{"'", `"`}[rng.Intn(2)]
		v := gramValues[rng.Intn(len(gramValues))]
		if v == "'" {
			q = `"`
		}
		eq := []string{"=", " = ", "="}[rng.Intn(3)]
		sb.WriteString(sp + gramAttrs[rng.Intn(len(gramAttrs))] + eq + q + v + q)
	}
	if depth > 3 || rng.Intn(3) == 0 {
		sb.WriteString([]string{"/>", " />", "/ >"}[rng.Intn(3)])
		return
	}
	sb.WriteString(">")
	for i := rng.Intn(4); i > 0; i-- {
		switch rng.Intn(3) {
		case 0:
			gramStanza(rng, sb, depth+1)
		default:
			sb.WriteString([]string{"t", "]]", "x]]y", "&amp;", " ", "\r\n", "&#x41;", "<!--c-->", "<![CDATA[]]]]>", "]>", "\u00e9"}[rng.Intn(11)])
		}
	}
	sb.WriteString("</" + name + []string{">", " >", ">"}[rng.Intn(3)])
}

// TestStreamGrammarDifferential holds the Decoder to encoding/xml on
// random streams of a few stanzas built from names, declarations,
// attributes and text that reach the fast paths and the names kept from
// one stanza to the next (simpleIndex), for two seconds.
func TestStreamGrammarDifferential(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	end := time.Now().Add(2 * time.Second)
	rng := rand.New(rand.NewSource(seed))
	n, ok := 0, 0
	for time.Now().Before(end) {
		var sb strings.Builder
		for k := 1 + rng.Intn(4); k > 0; k-- {
			gramStanza(rng, &sb, 0)
		}
		in := sb.String()
		n++
		if err := differ([]byte(in)); err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if _, _, err := refDecode([]byte(in)); err == nil {
			ok++
		}
	}
	t.Logf("%d inputs, %d well-formed first elements", n, ok)
}

// TestNamesKeptStayBounded reads a long stream whose every stanza brings
// new names: the names kept from one stanza to the next never grow past
// keepNames and the names of the last stanza, whatever the stream's length.
func TestNamesKeptStayBounded(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(streamHeader)
	const stanzas = 3000
	for i := range stanzas {
		sb.WriteString("<m" + strconv.Itoa(i) + " a" + strconv.Itoa(i) + "='1'><c" + strconv.Itoa(i) + "/></m" + strconv.Itoa(i) + ">")
	}
	d := NewDecoder(strings.NewReader(sb.String()), 1<<20)
	if _, err := d.Next(nil); err != nil {
		t.Fatal(err)
	}
	var tr Tree
	for i := range stanzas {
		if _, err := d.Next(&tr); err != nil {
			t.Fatal(i, err)
		}
		if len(d.names) > keepNames || cap(d.names) > 4*keepNames {
			t.Fatalf("after stanza %d: %d names kept, room for %d", i, len(d.names), cap(d.names))
		}
	}
}
