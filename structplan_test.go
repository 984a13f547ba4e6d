package iq

import (
	"encoding/xml"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Shapes that get compiled plans: every leaf kind, in attributes,
// character data, child elements and lists, nested structs by value,
// pointer and slice, embedded structs, namespaced fields and names given
// at run time.

type scColor string

type scPlainInner struct {
	XMLName xml.Name `xml:"urn:p inner"`
	V       string   `xml:"v,attr"`
	N       []int    `xml:"n"`
}

type scPlainKid struct {
	V    int8     `xml:"v,attr,omitempty"`
	Text string   `xml:",chardata"`
	Kids []uint16 `xml:"k"`
}

type scPlainEmb struct {
	E  string `xml:"e"`
	EA int    `xml:"ea,attr"`
}

type scPlain struct {
	XMLName xml.Name `xml:"urn:p plain"`
	scPlainEmb
	S    string        `xml:"s,attr"`
	I8   int8          `xml:"i8,attr,omitempty"`
	I16  int16         `xml:"i16,attr"`
	I32  int32         `xml:"i32,attr"`
	I64  int64         `xml:"i64,attr"`
	U    uint          `xml:"u,attr"`
	U8   uint8         `xml:"u8,attr"`
	U16  uint16        `xml:"u16,attr"`
	U32  uint32        `xml:"u32,attr,omitempty"`
	U64  uint64        `xml:"u64,attr"`
	Up   uintptr       `xml:"up,attr"`
	F32  float32       `xml:"f32,attr,omitempty"`
	F64  float64       `xml:"f64,attr"`
	B    bool          `xml:"b,attr"`
	By   []byte        `xml:"by,attr"`
	NA   string        `xml:"urn:o na,attr"`
	Lang string        `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	C    scColor       `xml:"c"`
	Str  string        `xml:"str,omitempty"`
	Int  int           `xml:"int"`
	Flt  float64       `xml:"flt,omitempty"`
	F32e float32       `xml:"f32e"`
	Bol  bool          `xml:"bol"`
	Byt  []byte        `xml:"byt"`
	Strs []string      `xml:"strs"`
	Ints []int         `xml:"ints,omitempty"`
	I64s []int64       `xml:"i64s"`
	In   scPlainInner  `xml:"inner"`
	Kid  *scPlainKid   `xml:"kid"`
	Kids []scPlainKid  `xml:"kids"`
	PIns []*scPlainKid `xml:"pkid"`
	NS   string        `xml:"urn:o nsel"`
	Text string        `xml:",chardata"`
}

// scRuntime takes its name from its XMLName's value, or its field's.
type scRuntime struct {
	XMLName xml.Name
	A       string     `xml:"a,attr,omitempty"`
	Kid     *scRuntime `xml:"kid"`
	Num     float64    `xml:",chardata"`
}

func init() {
	scSupported = append(scSupported,
		func() any { return new(scPlain) },
		func() any { return new(scPlainKid) },
		func() any { return new(scRuntime) },
	)
	scInputs = append(scInputs,
		`<plain xmlns="urn:p" s="s" i8="-8" i16="-16" i32="-32" i64="-64" u="1" u8="255" u16="16" u32="32" u64="64" up="7" f32="1.5" f64="-2.5e-3" b="true" by="bytes" xmlns:o="urn:o" o:na="na" xml:lang="en" ea="9">`+
			`<e>emb</e><c>red</c><str>a</str><str>b</str><int> 12 </int><flt>2.5</flt><f32e>-0</f32e><bol>1</bol><byt/><strs>x</strs><strs/><ints>1</ints><ints>2</ints><i64s>-9223372036854775808</i64s>`+
			`<inner v="iv"><n>1</n><n>2</n></inner><kid v="3">kt<k>4</k>kx</kid><kids><k>5</k></kids><kids v="1"/><pkid>p</pkid><nsel xmlns="urn:o">ns</nsel><nsel>wrong</nsel>text &amp; more</plain>`,
		`<plain xmlns="urn:p" i8="128"/>`,
		`<plain xmlns="urn:p" i8="099"/>`,
		`<plain xmlns="urn:p" i16="+7" i32="2147483648"/>`,
		`<plain xmlns="urn:p" u8="-1"/>`,
		`<plain xmlns="urn:p" f32="3.5e38"/>`,
		`<plain xmlns="urn:p" f32="3.5e39"/>`,
		`<plain xmlns="urn:p" b="maybe"/>`,
		`<plain xmlns="urn:p"><int>99999999999999999999</int></plain>`,
		`<plain xmlns="urn:p"><ints>1</ints><ints>x</ints><ints>3</ints></plain>`,
		`<plain xmlns="urn:p"><inner v="1"><n>1</n><n>y</n></inner></plain>`,
		`<plain xmlns="urn:p"><inner xmlns="urn:q"/></plain>`,
		`<plain xmlns="urn:p"><kids><k>1</k></kids><kids><k>-1</k></kids></plain>`,
		`<plain xmlns="urn:p"><kid v="x"/></plain>`,
		`<plain xmlns="urn:q"/>`,
		`<plainer xmlns="urn:p"/>`,
		`<scPlainKid v="1">a<k>1</k>b<k>2</k>c</scPlainKid>`,
		`<r xmlns="urn:r" a="1">2.5<kid a="2">x</kid></r>`,
		`<r><kid xmlns="urn:k"><kid>1e3</kid></kid>-0</r>`,
		`<r>NaN</r>`,
	)
}

// planDifferential decodes in with v's plan and with the tree codec,
// which must agree exactly, values and errors; a value that decodes is
// then encoded both ways, which must agree too.
func planDifferential(t testing.TB, mk func() any, in *Element) {
	t.Helper()
	got, want := mk(), mk()
	gotErr := decodeWith(in, got, true)
	wantErr := decodeWith(in, want, false)
	name := fmt.Sprintf("%T from %s", want, in)
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("%s: plan error %v, tree error %v", name, gotErr, wantErr)
	}
	if !reflect.DeepEqual(want, got) && !sameNaN(want, got) {
		t.Fatalf("%s:\ntree %#v\nplan %#v", name, want, got)
	}
	if gotErr != nil {
		return
	}
	pe, te := encodeFastWith(got, true), encodeFastWith(got, false)
	if (pe == nil) != (te == nil) || !pe.Equal(te) {
		t.Fatalf("%s: encoded by the plan as %s, by the tree encoder as %s", name, pe, te)
	}
}

func TestStructPlans(t *testing.T) {
	for _, v := range []any{scPlain{}, scPlainKid{}, scRuntime{}, scPlainInner{}, scEcho{}, scTree{}, scItem{}, scInner{}, scNoName{}} {
		assert.NotNil(t, planFor(reflect.TypeOf(v)), "%T has a plan", v)
	}
	// Shapes the plans leave to the tree codec: a>b paths, any, cdata,
	// text and attribute marshalers, xml.Name and xml.Attr fields,
	// pointers to basic kinds, and anything that falls back to
	// encoding/xml.
	type withPointerLeaf struct {
		P *int `xml:"p"`
	}
	type withTimeAttr struct {
		XMLName xml.Name `xml:"urn:t t"`
		When    scUpper  `xml:"when,attr"`
	}
	for _, v := range []any{scAll{}, scAny{}, scCDATA{}, scBadKinds{}, scChardataStruct{}, scConflict{},
		scWithUnm{}, scIface{}, scInner2{}, withPointerLeaf{}, withTimeAttr{}, Element{}} {
		assert.Nil(t, planFor(reflect.TypeOf(v)), "%T has no plan", v)
	}
}

func TestStructPlanDifferential(t *testing.T) {
	for _, in := range scInputs {
		e, err := ParseElement([]byte(in))
		require.NoError(t, err, in)
		for _, mk := range scSupported {
			t.Run(fmt.Sprintf("%T/%.40s", mk(), in), func(t *testing.T) {
				planDifferential(t, mk, e)
				differential(t, mk, e)
			})
		}
	}
}

func TestStructPlanEncode(t *testing.T) {
	full := &scPlain{
		scPlainEmb: scPlainEmb{E: "e", EA: -1},
		S:          "s\t\"'<&>\x00\xff", I8: -128, I16: 1, I32: math.MinInt32, I64: math.MaxInt64,
		U: 1, U8: 255, U16: 16, U32: 0, U64: math.MaxUint64, Up: 3, F32: float32(math.Copysign(0, -1)),
		F64: math.Inf(-1), B: true, By: []byte("b\x01"), NA: "na", Lang: "fr", C: "blue",
		Str: "", Int: 0, Flt: math.NaN(), F32e: 1e-7, Bol: false, Byt: []byte{}, Strs: []string{"", "a"},
		Ints: []int{0, 1, 0}, I64s: nil, In: scPlainInner{V: "v", N: []int{3}},
		Kid: &scPlainKid{V: 0, Text: "t", Kids: []uint16{1}}, Kids: []scPlainKid{{}, {V: 1}},
		PIns: []*scPlainKid{nil, {Text: "p"}}, NS: "ns", Text: "text\r\n",
	}
	tests := []struct {
		name string
		v    any
		fast bool
	}{
		{"plain full", full, true},
		{"plain empty", &scPlain{}, true},
		{"plain value", *full, true},
		{"kid", &scPlainKid{V: 5, Text: "x", Kids: []uint16{0, 7}}, true},
		{"runtime name", &scRuntime{XMLName: xml.Name{Space: "urn:r", Local: "r"}, Num: 1.5, Kid: &scRuntime{A: "a"}}, true},
		{"runtime name in no namespace", &scRuntime{XMLName: xml.Name{Local: "r"}, Kid: &scRuntime{XMLName: xml.Name{Local: "k"}}}, true},
		{"runtime name under a namespace", &scRuntime{XMLName: xml.Name{Space: "urn:r", Local: "r"}, Kid: &scRuntime{XMLName: xml.Name{Local: "k"}}}, true},
		{"runtime name bad", &scRuntime{XMLName: xml.Name{Space: "urn:r", Local: "a b"}}, false},
		{"runtime kid name bad", &scRuntime{XMLName: xml.Name{Local: "r"}, Kid: &scRuntime{XMLName: xml.Name{Space: "rel", Local: "k"}}}, false},
		{"type name", &scRuntime{Num: 2}, true},
		{"tree", &scTree{V: "1", Kids: []scTree{{V: "2", Kids: []scTree{{V: "3"}}}, {V: "4"}}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.fast, encodeDifferential(t, tc.v), "built from the struct")
			pe, te := encodeFastWith(tc.v, true), encodeFastWith(tc.v, false)
			assert.Equal(t, pe == nil, te == nil)
			assert.True(t, pe.Equal(te), "plan %s, tree %s", pe, te)
			assertEncodesAsXML(t, tc.v)
		})
	}
}

// TestStructPlanBlocks encodes lists of every length up to past the
// largest block, for the count to be checked against what is carved.
func TestStructPlanBlocks(t *testing.T) {
	for n := 0; n < 150; n += 1 + n/8 {
		v := &scPlainInner{V: strings.Repeat("v", n), N: make([]int, n)}
		for i := range v.N {
			v.N[i] = i
		}
		require.True(t, encodeDifferential(t, v), "n=%d", n)
		kid := &scPlainKid{Text: "t", Kids: make([]uint16, n)}
		require.True(t, encodeDifferential(t, kid), "n=%d", n)
	}
}

// TestStructPlanDepth decodes a recursive type from an element deeper
// than the decoder's limit, with and without the plan.
func TestStructPlanDepth(t *testing.T) {
	const depth = 6000
	root := NewElement("", "n")
	e := root
	for range depth {
		c := NewElement("", "n")
		e.Append(c)
		e = c
	}
	for _, plans := range []bool{true, false} {
		var v scTree
		err := decodeWith(root, &v, plans)
		require.Error(t, err, "plans %v", plans)
		assert.ErrorContains(t, err, "exceeded max depth")
	}
}

func TestStructPlanAllocs(t *testing.T) {
	v := sampleBenchForecast()
	e, err := encodeStruct(v)
	require.NoError(t, err)
	assert.LessOrEqual(t, testing.AllocsPerRun(100, func() { _ = encodeFast(v) }), 1.0, "allocations per encode")
	var out benchForecast
	assert.LessOrEqual(t, testing.AllocsPerRun(100, func() {
		out.Temps = out.Temps[:0]
		_ = decodeStruct(e, &out)
	}), 0.0, "allocations per decode into a list with room")
	assert.Equal(t, *v, benchForecast{City: out.City, Days: out.Days, Sky: out.Sky, Temps: out.Temps})
}

func TestSafeText(t *testing.T) {
	for _, s := range []string{"", "plain", "tab\tnl\ncr\r", "del\x7f", "nul\x00", "esc\x1b", "é", "bad\xff", "\xed\xa0\x80", "\uFFFE", "\U0001F600", "a\x01é\x02"} {
		// Ranging over s turns each byte of invalid UTF-8 into U+FFFD.
		var want strings.Builder
		for _, r := range s {
			if !xmlChar(r) {
				r = '\uFFFD'
			}
			want.WriteRune(r)
		}
		assert.Equal(t, want.String(), safeText(s), "%q", s)
	}
}

// TestBugPlanBlockPointsPastItsEnd encodes structs with no attributes,
// and one with no content either: the block's empty arrays then sit at
// its very end, and a slice made there pointed past the allocation
// (checkptr, under -race, reported it as straddling allocations).
func TestBugPlanBlockPointsPastItsEnd(t *testing.T) {
	type bare struct {
		XMLName xml.Name `xml:"urn:x bare"`
	}
	type noAttrs struct {
		XMLName xml.Name `xml:"urn:x noattrs"`
		S       string   `xml:"s"`
	}
	for _, v := range []any{&bare{}, &noAttrs{S: "s"}, &noAttrs{}} {
		require.NotNil(t, planFor(reflect.TypeOf(v).Elem()), "%T has a plan", v)
		assert.True(t, encodeDifferential(t, v), "%T built from the struct", v)
	}
}

// TestStructPlanConcurrent compiles, decodes and encodes a fresh planned
// type from several goroutines at once, for the race detector to watch
// the plan cache and the blocks.
func TestStructPlanConcurrent(t *testing.T) {
	type kid struct {
		V string `xml:"v,attr"`
	}
	type fresh struct {
		XMLName xml.Name `xml:"urn:fresh f"`
		N       []int    `xml:"n"`
		Kids    []*kid   `xml:"kid"`
	}
	e, err := ParseElement([]byte(`<f xmlns="urn:fresh"><n>1</n><kid v="a"/><n>2</n><kid/></f>`))
	require.NoError(t, err)
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			var v fresh
			if err := decodeStruct(e, &v); err != nil {
				errs <- err
				return
			}
			v.N = append(v.N, i) // a different count each time, for the blocks
			out, err := encodeStruct(&v)
			if err == nil && len(out.Content) != 5 {
				err = fmt.Errorf("encoded as %s", out)
			}
			errs <- err
		}()
	}
	for range 8 {
		assert.NoError(t, <-errs)
	}
	assert.NotNil(t, planFor(reflect.TypeFor[fresh]()))
}
