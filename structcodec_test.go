package iq

import (
	"encoding/xml"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Struct shapes for the differential tests: each is decoded from a tree
// and, for comparison, by xml.Unmarshal from the tree's serialization.

type scEcho struct {
	XMLName xml.Name `xml:"urn:example:typed echo"`
	Text    string   `xml:",chardata"`
	N       int      `xml:"n,attr,omitempty"`
}

type scItem struct {
	ID   string `xml:"id,attr"`
	Name string `xml:",chardata"`
}

type scInner struct {
	A string `xml:"a"`
	B int    `xml:"b,attr"`
}

type scEmbedded struct {
	Emb  string `xml:"emb"`
	EmbA string `xml:"emba,attr"`
}

// scUpper is a TextUnmarshaler and TextMarshaler that refuses "bad".
type scUpper string

func (u *scUpper) UnmarshalText(b []byte) error {
	if string(b) == "bad" {
		return errors.New("scUpper: bad text")
	}
	*u = scUpper(strings.ToUpper(string(b)))
	return nil
}

func (u scUpper) MarshalText() ([]byte, error) {
	if u == "BAD" {
		return nil, errors.New("scUpper: cannot marshal BAD")
	}
	return []byte(strings.ToLower(string(u))), nil
}

// scAttrU is an UnmarshalerAttr and MarshalerAttr.
type scAttrU struct{ Got string }

func (a *scAttrU) UnmarshalXMLAttr(at xml.Attr) error {
	if at.Value == "bad" {
		return errors.New("scAttrU: bad attribute")
	}
	a.Got = at.Name.Space + "|" + at.Name.Local + "=" + at.Value
	return nil
}

func (a scAttrU) MarshalXMLAttr(n xml.Name) (xml.Attr, error) {
	if a.Got == "" {
		return xml.Attr{}, nil
	}
	return xml.Attr{Name: n, Value: "u:" + a.Got}, nil
}

type scAll struct {
	XMLName xml.Name `xml:"urn:t all"`
	scEmbedded
	S     string    `xml:"s,attr"`
	I8    int8      `xml:"i8,attr"`
	U16   uint16    `xml:"u16,attr,omitempty"`
	F32   float32   `xml:"f32,attr"`
	Bo    bool      `xml:"bo,attr"`
	By    []byte    `xml:"by,attr"`
	PI    *int      `xml:"pi,attr"`
	Lang  string    `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	NSA   string    `xml:"urn:other na,attr"`
	UA    scUpper   `xml:"ua,attr"`
	AU    scAttrU   `xml:"au,attr"`
	Str   string    `xml:"str"`
	Int   int       `xml:"int,omitempty"`
	PStr  *string   `xml:"pstr"`
	Strs  []string  `xml:"strs"`
	Ints  []int     `xml:"ints"`
	Bool  bool      `xml:"bool"`
	Flt   float64   `xml:"flt"`
	Uint  uint64    `xml:"uint"`
	Byts  []byte    `xml:"byts"`
	In    scInner   `xml:"in"`
	Ins   []scInner `xml:"ins"`
	PIn   *scInner  `xml:"pin"`
	Deep  string    `xml:"a>b>c"`
	Deep2 []int     `xml:"a>b>d"`
	NS    string    `xml:"urn:other nsel"`
	Nm    xml.Name  `xml:"nm"`
	When  time.Time `xml:"when"`
	Up    scUpper   `xml:"up"`
	Its   []scItem  `xml:"item"`
	Text  string    `xml:",chardata"`
}

type scAny struct {
	XMLName xml.Name   `xml:"urn:t any"`
	Known   string     `xml:"known"`
	Rest    []scItem   `xml:",any"`
	Attrs   []xml.Attr `xml:",any,attr"`
	ID      string     `xml:"id,attr"`
}

type scTree struct {
	XMLName xml.Name `xml:"n"`
	V       string   `xml:"v,attr"`
	Kids    []scTree `xml:"n"`
}

type scCDATA struct {
	XMLName xml.Name   `xml:"cd"`
	Data    []byte     `xml:",cdata"`
	Num     *int       `xml:"num"`
	Names   []xml.Name `xml:"nm"`
	AttrA   xml.Attr   `xml:"aa,attr"`
}

type scNoName struct {
	Field string
	Other int   `xml:",attr"`
	Val   uint8 `xml:",chardata"`
}

type scBadKinds struct {
	M map[string]string `xml:"m"`
	C complex64         `xml:"c"`
	T string            `xml:",chardata"`
}

type scChardataStruct struct {
	In scInner `xml:",chardata"`
}

// Fallback types.
type scInner2 struct {
	XML string `xml:",innerxml"`
}

type scUnm struct{ got string }

func (u *scUnm) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	u.got = start.Name.Local
	return d.Skip()
}

type scWithUnm struct {
	XMLName xml.Name `xml:"w"`
	U       scUnm    `xml:"u"`
}

type scIface struct {
	X any `xml:"x"`
}

type scConflict struct {
	A string `xml:"a"`
	B string `xml:"a>c"`
}

// normalizer drops what xml.Unmarshal reads from how the element was
// written rather than from its infoset.
type normalizer interface{ normalize() }

func (a *scAny) normalize() {
	var out []xml.Attr
	for _, at := range a.Attrs {
		if at.Name.Space != "xmlns" && !(at.Name.Space == "" && at.Name.Local == "xmlns") {
			out = append(out, at)
		}
	}
	a.Attrs = out
}

var scSupported = []func() any{
	func() any { return new(scEcho) },
	func() any { return new(scAll) },
	func() any { return new(scAny) },
	func() any { return new(scTree) },
	func() any { return new(scCDATA) },
	func() any { return new(scNoName) },
	func() any { return new(scBadKinds) },
	func() any { return new(scChardataStruct) },
	func() any { return new(*scEcho) },
	func() any { return new([]scItem) },
	func() any { return new(string) },
	func() any { return new(int) },
	func() any { return new(scUpper) },
}

var scFallback = []func() any{
	func() any { return new(scInner2) },
	func() any { return new(scWithUnm) },
	func() any { return new(scIface) },
	func() any { return new(scConflict) },
	func() any { return new(Element) },
}

var scInputs = []string{
	`<echo xmlns="urn:example:typed" n="7">hi</echo>`,
	`<echo xmlns="urn:example:typed" n="x7">hi</echo>`,
	`<echo xmlns="urn:example:typed" n=" 7 ">hi<b/>there</echo>`,
	`<echo xmlns="urn:example:other">hi</echo>`,
	`<echo>no namespace</echo>`,
	`<other xmlns="urn:example:typed"/>`,
	`<all xmlns="urn:t" s="s" i8="-12" u16="65535" f32="1.5" bo="true" by="bytes" pi="3" xml:lang="en" xmlns:o="urn:other" o:na="other" ua="up" au="attr" emba="ea">` +
		`<str>one</str><str>two</str><int> 42 </int><pstr>p</pstr><strs>a</strs><strs>b</strs><ints>1</ints><ints>2</ints>` +
		`<bool>1</bool><flt>2.5e3</flt><uint>18446744073709551615</uint><byts>xyz</byts><byts/>` +
		`<in b="4"><a>inner</a></in><ins b="1"><a>x</a></ins><ins b="2"/><pin><a>p</a></pin>` +
		`<a><b><c>deep</c><d>1</d><d>2</d></b><b><d>3</d></b></a><nsel xmlns="urn:other">ns</nsel><nsel>wrongns</nsel>` +
		`<nm xmlns="urn:nm">x</nm><when>2024-01-02T03:04:05Z</when><up>shout</up><emb>embedded</emb>` +
		`<item id="1">first</item><item id="2"/>text<!-- c -->more</all>`,
	`<all xmlns="urn:t" i8="200"/>`,
	`<all xmlns="urn:t" u16="-1"/>`,
	`<all xmlns="urn:t" f32="nan"/>`,
	`<all xmlns="urn:t" f32="1e40"/>`,
	`<all xmlns="urn:t" bo="yes"/>`,
	`<all xmlns="urn:t" pi=""/>`,
	`<all xmlns="urn:t" ua="bad"/>`,
	`<all xmlns="urn:t" au="bad"/>`,
	`<all xmlns="urn:t"><int>4 2</int></all>`,
	`<all xmlns="urn:t"><int></int><bool></bool><flt/><uint/></all>`,
	`<all xmlns="urn:t"><ints>1</ints><ints>x</ints></all>`,
	`<all xmlns="urn:t"><when>yesterday</when></all>`,
	`<all xmlns="urn:t"><up>bad</up></all>`,
	`<all xmlns="urn:t"><in b="q"/></all>`,
	`<all xmlns="urn:t"><a xmlns="urn:x"><b><c>other ns parent</c></b></a></all>`,
	`<all xmlns="urn:t"><str>a<x>nested</x>b</str></all>`,
	`<all xmlns="urn:t">` + strings.Repeat("<item id='r'>r</item>", 5) + `</all>`,
	`<any xmlns="urn:t" id="1" extra="e" xmlns:p="urn:p" p:q="pq"><known>k</known><item id="a">A</item><other>o</other><p:x>px</p:x></any>`,
	`<any xmlns="urn:t"><Rest id="r">named like the field</Rest></any>`,
	`<n v="1"><n v="2"><n v="3"/></n><n v="4"/><m/></n>`,
	`<cd><![CDATA[raw <data>]]>text<num>5</num><nm/><nm xmlns="urn:q">q</nm></cd>`,
	`<cd aa="v"><num>-</num></cd>`,
	`<cd/>`,
	`<scNoName Other="3"><Field>f</Field>200</scNoName>`,
	`<scNoName Other="3">256</scNoName>`,
	`<x><m>map</m></x>`,
	`<x><c>1</c></x>`,
	`<x>chardata into a struct</x>`,
	`<item id="i">one</item>`,
	`<w><u/></w>`,
	`<x><x>iface</x></x>`,
	`<a>conflict</a>`,
	`<e a="1" b="2">` + "tab\tnl\ncr\r" + `</e>`,
	`<e>&#x1F600; &amp; &lt;</e>`,
}

// differential decodes in into a fresh value of mk both ways and
// compares values and errors.
func differential(t testing.TB, mk func() any, in *Element) {
	t.Helper()
	data, err := in.AppendXML(nil)
	require.NoError(t, err)
	want, got := mk(), mk()
	wantErr := xml.Unmarshal(data, want)
	gotErr := decodeStruct(in, got)
	name := fmt.Sprintf("%T from %s", want, data)
	if wantErr != nil {
		if gotErr == nil {
			t.Fatalf("%s: xml.Unmarshal failed with %v, decodeStruct did not", name, wantErr)
		}
		if !strings.Contains(gotErr.Error(), wantErr.Error()) {
			t.Fatalf("%s: xml.Unmarshal failed with %q, decodeStruct with %q", name, wantErr, gotErr)
		}
		return
	}
	if gotErr != nil {
		t.Fatalf("%s: decodeStruct failed with %v, xml.Unmarshal did not", name, gotErr)
	}
	if n, ok := want.(normalizer); ok {
		n.normalize()
	}
	if !reflect.DeepEqual(want, got) && !sameNaN(want, got) {
		t.Fatalf("%s:\nxml.Unmarshal %#v\ndecodeStruct  %#v", name, want, got)
	}
}

// sameNaN tells values that differ only by holding NaN, which is not
// equal to itself, apart from others.
func sameNaN(a, b any) bool {
	sa, sb := fmt.Sprintf("%#v", a), fmt.Sprintf("%#v", b)
	return sa == sb && strings.Contains(sa, "NaN")
}

func TestDecodeStructDifferential(t *testing.T) {
	for _, in := range scInputs {
		e, err := ParseElement([]byte(in))
		require.NoError(t, err, in)
		for _, mk := range append(append([]func() any{}, scSupported...), scFallback...) {
			t.Run(fmt.Sprintf("%T/%.40s", mk(), in), func(t *testing.T) {
				differential(t, mk, e)
			})
		}
	}
}

func TestDecodeStructPlans(t *testing.T) {
	for _, mk := range scSupported {
		v := mk()
		t.Run(fmt.Sprintf("%T", v), func(t *testing.T) {
			assert.Empty(t, decodeFallback(reflect.TypeOf(v)), "decoded from the tree")
		})
	}
	for _, mk := range scFallback {
		v := mk()
		t.Run(fmt.Sprintf("%T", v), func(t *testing.T) {
			assert.NotEmpty(t, decodeFallback(reflect.TypeOf(v)), "left to encoding/xml")
		})
	}
}

func TestDecodeStructNil(t *testing.T) {
	tests := []struct {
		name string
		e    *Element
		v    any
	}{
		{"nil element", nil, new(scEcho)},
		{"nil pointer", NewElement("urn:example:typed", "echo"), (*scEcho)(nil)},
		{"non-pointer", NewElement("urn:example:typed", "echo"), scEcho{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Error(t, decodeStruct(tc.e, tc.v))
		})
	}
}

func TestDecodeStructAllocs(t *testing.T) {
	e, err := ParseElement([]byte(`<echo xmlns="urn:example:typed" n="7">hello</echo>`))
	require.NoError(t, err)
	var v scEcho
	require.NoError(t, decodeStruct(e, &v))
	n := testing.AllocsPerRun(100, func() {
		v = scEcho{}
		_ = decodeStruct(e, &v)
	})
	assert.LessOrEqual(t, n, 2.0, "allocations per decode of a small struct")
	assert.Equal(t, scEcho{XMLName: e.Name, Text: "hello", N: 7}, v)
}

func FuzzDecodeStruct(f *testing.F) {
	for _, in := range scInputs {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseElement(data)
		if err != nil {
			return
		}
		for _, mk := range scSupported {
			differential(t, mk, e)
			planDifferential(t, mk, e)
			v := mk()
			if xml.Unmarshal([]byte(e.String()), v) == nil {
				encodeDifferential(t, v)
			}
		}
	})
}

// encodeDifferential encodes v both ways and compares: the Element built
// from v must equal what xml.Marshal writes, parsed back.
func encodeDifferential(t testing.TB, v any) (fast bool) {
	t.Helper()
	want, wantErr := marshalElementXML(v)
	e := encodeFast(v)
	if e == nil {
		return false
	}
	if wantErr != nil {
		t.Fatalf("%T %+v: MarshalElement failed with %v, the tree encoder built %s", v, v, wantErr, e)
	}
	if !want.Equal(e) {
		t.Fatalf("%T %+v:\nMarshalElement %s\nencodeFast     %s\n%#v\n%#v", v, v, want, e, want, e)
	}
	return true
}

func TestEncodeStructDifferential(t *testing.T) {
	three := 3
	word := "word"
	tests := []struct {
		name string
		v    any
		fast bool
	}{
		{"echo", &scEcho{Text: "hi", N: 2}, true},
		{"echo value", scEcho{Text: "hi"}, true},
		{"echo bad text", &scEcho{Text: "a\x00b\xffc\r\n<&>"}, true},
		{"all empty", &scAll{}, true},
		{"all full", &scAll{
			scEmbedded: scEmbedded{Emb: "e", EmbA: "ea"},
			S:          "s\t\"'", I8: -3, U16: 9, F32: 1.25, Bo: true, By: []byte("by"), PI: &three,
			Lang: "en", NSA: "na", UA: "Up", AU: scAttrU{Got: "g"},
			Str: "str", Int: 4, PStr: &word, Strs: []string{"a", "", "b"}, Ints: []int{1, 2},
			Bool: true, Flt: 1e21, Uint: 7, Byts: []byte{}, In: scInner{A: "a", B: 2},
			Ins: []scInner{{A: "x"}, {B: 1}}, PIn: &scInner{}, Deep: "deep", Deep2: []int{5, 6},
			NS: "ns", Nm: xml.Name{Space: "urn:q", Local: "q"}, When: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
			Up: "UP", Its: []scItem{{ID: "1", Name: "one"}}, Text: "text",
		}, true},
		{"textmarshaler error", &scAll{Up: "BAD"}, false},
		{"tree", &scTree{V: "1", Kids: []scTree{{V: "2", Kids: []scTree{{V: "3"}}}, {V: "4"}}}, true},
		{"any", &scAny{Known: "k", Rest: []scItem{{ID: "r"}}, Attrs: []xml.Attr{{Name: xml.Name{Space: "urn:p", Local: "q"}, Value: "v"}, {Name: xml.Name{Local: "z"}, Value: "w"}}, ID: "1"}, true},
		{"any duplicate attr", &scAny{Attrs: []xml.Attr{{Name: xml.Name{Local: "id"}, Value: "v"}}, ID: "1"}, false},
		{"any xmlns attr", &scAny{Attrs: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: "urn:x"}}}, false},
		{"any bad attr name", &scAny{Attrs: []xml.Attr{{Name: xml.Name{Local: "a:b"}, Value: "v"}}}, false},
		{"runtime name", &typedRuntimeNameInternal{XMLName: xml.Name{Space: "urn:r", Local: "r"}, Kid: &typedRuntimeNameInternal{XMLName: xml.Name{Local: "kid"}}}, true},
		{"runtime name inherits", &typedRuntimeNameInternal{XMLName: xml.Name{Local: "r"}, Kid: &typedRuntimeNameInternal{XMLName: xml.Name{Space: "urn:k", Local: "kid"}}}, true},
		{"runtime bad name", &typedRuntimeNameInternal{XMLName: xml.Name{Space: "urn:r", Local: "a b"}}, false},
		{"no name", &scNoName{Field: "f", Other: 1, Val: 2}, true},
		{"cdata", &scCDATA{Data: []byte("x")}, false},
		{"fallback marshaler", NewElement("urn:x", "x"), false},
		{"nil pointer", (*scEcho)(nil), false},
		{"slice at top", []scItem{{ID: "1"}, {ID: "2"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.fast, encodeDifferential(t, tc.v), "built from the struct")
			assertEncodesAsXML(t, tc.v)
		})
	}
}

type typedRuntimeNameInternal struct {
	XMLName xml.Name
	Kid     *typedRuntimeNameInternal
	A       string `xml:"a,attr,omitempty"`
}

func TestEncodeStructAllocs(t *testing.T) {
	v := &scEcho{Text: "hello", N: 7}
	n := testing.AllocsPerRun(100, func() { _ = encodeFast(v) })
	assert.LessOrEqual(t, n, 6.0, "allocations per encode of a small struct")
}

// TestStructCodecConcurrent decodes and encodes fresh types from several
// goroutines at once, for the race detector to watch the plan caches and
// the encoder's size hints.
func TestStructCodecConcurrent(t *testing.T) {
	e, err := ParseElement([]byte(scInputs[6]))
	require.NoError(t, err)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			var v scAll
			if err := decodeStruct(e, &v); err != nil {
				errs <- err
				return
			}
			out, err := encodeStruct(&v)
			if err == nil && out.Name != e.Name {
				err = fmt.Errorf("encoded as %v, want %v", out.Name, e.Name)
			}
			errs <- err
		}()
	}
	for range 8 {
		assert.NoError(t, <-errs)
	}
}

// assertEncodesAsXML checks that encodeStruct encodes v as encoding/xml
// does, or fails with its error.
func assertEncodesAsXML(t *testing.T, v any) {
	t.Helper()
	got, gotErr := encodeStruct(v)
	want, wantErr := marshalElementXML(v)
	if wantErr != nil {
		require.Error(t, gotErr)
		assert.Equal(t, wantErr.Error(), gotErr.Error())
		return
	}
	require.NoError(t, gotErr)
	assert.True(t, want.Equal(got), "%s != %s", want, got)
}
