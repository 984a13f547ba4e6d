package iq

import (
	"encoding/xml"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Shapes the plans compile beyond scSupported's (two chardata fields,
// same-named attribute and element, namespaced and plain attributes of
// one local name, named string and byte-slice types, pointer and value
// slices of structs, XMLName given at run time only), held to the tree
// codec and to encoding/xml on fixed and random input, and random values
// encoded by both encoders.

type RvEmb struct {
	E  string `xml:"e"`
	EA string `xml:"ea,attr"`
}

type rvStr string
type rvBytes []byte

type rvTwoCD struct {
	XMLName xml.Name `xml:"t"`
	A       string   `xml:",chardata"`
	B       int      `xml:",chardata"`
	K       string   `xml:"k"`
}

type rvKid struct {
	XMLName xml.Name `xml:"kid"`
	V       string   `xml:"v,attr"`
}

type rvShapes struct {
	XMLName xml.Name `xml:"urn:s s"`
	RvEmb
	Same  string   `xml:"same,attr"`
	SameE string   `xml:"same"`
	NS1   string   `xml:"urn:a x,attr"`
	NS2   string   `xml:"x,attr"`
	Named []rvStr  `xml:"n,omitempty"`
	NB    rvBytes  `xml:"nb"`
	NBA   rvBytes  `xml:"nba,attr,omitempty"`
	Kid   rvKid    `xml:"kid"`
	PKids []*rvKid `xml:"kid2"`
	Kids  []rvKid  `xml:"kid3"`
	Skip  string   `xml:"-"`
	priv  string
	Bool  bool        `xml:",chardata"`
	Flts  []float32   `xml:"f"`
	U8s   []uint8     `xml:"u8"`
	Deep  *rvNoName   `xml:"deep"`
	Ptrs  []*rvNoName `xml:"deeps"`
}

type rvNSOnly struct {
	XMLName xml.Name
	A       string    `xml:"a,attr"`
	Sub     *rvNSOnly `xml:"urn:p sub"`
}

type rvNoName struct {
	A   string     `xml:"a,attr"`
	Sub []rvNoName `xml:"sub"`
	T   string     `xml:",chardata"`
}

var rvMakers = []func() any{
	func() any { return new(rvTwoCD) },
	func() any { return new(rvShapes) },
	func() any { return new(rvNSOnly) },
	func() any { return new(rvNoName) },
}

var rvInputs = []string{
	`<t>12<k>x</k>34</t>`, `<t>x</t>`, `<t> 1 </t>`,
	`<s xmlns="urn:s" same="a" ea="q" x="1" xmlns:a="urn:a" a:x="2"><same>b</same><e>ee</e><n>1</n><n/><nb>zz</nb><kid v="1"/><kid2 v="2"/><kid2/><kid3 v="3"/><kid3><kid/></kid3>true<f>1.5</f><u8>255</u8><deep same="d"><deep same="dd">false</deep></deep><deeps><kid v='9'/></deeps><deeps/></s>`,
	`<s xmlns="urn:s"><kid/><kid2 v="1"/><kid3/>  true  </s>`,
	`<s xmlns="urn:s"><kid/><other/></s>`,
	`<s xmlns="urn:s"><kid3><x/></kid3></s>`,
	`<s xmlns="urn:s"><kid2><kid/></kid2></s>`,
	`<s xmlns="urn:s">maybe</s>`,
	`<s xmlns="urn:s"><u8>256</u8></s>`,
	`<s xmlns="urn:s"><nb/></s>`,
	`<s xmlns="urn:s" nba=""/>`,
	`<z xmlns="urn:o" a="1"><sub xmlns="urn:p" a="2"><sub xmlns="urn:p"/></sub></z>`,
	`<z xmlns="urn:q" a="1"/>`,
	`<z a="1"><sub>x</sub></z>`,
	`<r a="1">x<sub a="2">y<sub a="3"/></sub>z<sub/></r>`,
}

func TestStructPlanShapesDifferential(t *testing.T) {
	for _, mk := range rvMakers {
		if planFor(reflect.TypeOf(mk()).Elem()) == nil {
			t.Fatalf("%T has no plan", mk())
		}
	}
	for _, in := range rvInputs {
		e, err := ParseElement([]byte(in))
		if err != nil {
			t.Fatal(in, err)
		}
		for _, mk := range rvMakers {
			t.Run(fmt.Sprintf("%T/%.30s", mk(), in), func(t *testing.T) {
				planDifferential(t, mk, e)
				differential(t, mk, e)
				v := mk()
				if xml.Unmarshal([]byte(e.String()), v) == nil {
					encodeDifferential(t, v)
				}
			})
		}
	}
	three := &rvShapes{Skip: "s", priv: "p", Named: []rvStr{"", "a"}, PKids: []*rvKid{nil, {V: "x"}, nil}, Deep: &rvNoName{T: "t"}, Ptrs: []*rvNoName{nil, {A: "q"}}}
	encodeDifferential(t, three)
	encodeDifferential(t, &rvTwoCD{A: "a", B: 3, K: "k"})
	encodeDifferential(t, &rvNSOnly{XMLName: xml.Name{Space: "urn:v", Local: "v"}, Sub: &rvNSOnly{}})
	encodeDifferential(t, &rvNSOnly{Sub: &rvNSOnly{XMLName: xml.Name{Local: "w"}}})
	encodeDifferential(t, &rvNoName{A: "1", Sub: []rvNoName{{T: "x"}, {A: "2"}}})
}

var rvNames = []string{"s", "same", "e", "kid", "kid2", "kid3", "n", "nb", "f", "u8", "deep", "deeps", "sub", "k", "t", "z", "r"}
var rvVals = []string{"", "1", " 2 ", "x", "true", "-1", "1e3", "256", "0", "-0", "99999999999999999999"}
var rvAttrs = []string{"same", "ea", "x", "a:x", "nba", "v", "a"}

func rvGen(rng *rand.Rand, sb *strings.Builder, depth int, root bool) {
	name := rvNames[rng.Intn(len(rvNames))]
	sb.WriteString("<" + name)
	if root {
		sb.WriteString(` xmlns:a="urn:a"`)
		if rng.Intn(2) == 0 {
			sb.WriteString(` xmlns="urn:s"`)
		}
	} else if rng.Intn(4) == 0 {
		sb.WriteString(` xmlns="urn:` + []string{"s", "p", "o", "a"}[rng.Intn(4)] + `"`)
	}
	used := map[string]bool{}
	for i := rng.Intn(3); i > 0; i-- {
		a := rvAttrs[rng.Intn(len(rvAttrs))]
		if used[a] {
			continue
		}
		used[a] = true
		sb.WriteString(" " + a + `="` + rvVals[rng.Intn(len(rvVals))] + `"`)
	}
	sb.WriteString(">")
	for i := rng.Intn(4); i > 0; i-- {
		if depth < 5 && rng.Intn(2) == 0 {
			rvGen(rng, sb, depth+1, false)
		} else {
			sb.WriteString(rvVals[rng.Intn(len(rvVals))])
		}
	}
	sb.WriteString("</" + name + ">")
}

func TestStructPlanGrammarDifferential(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	end := time.Now().Add(2 * time.Second)
	rng := rand.New(rand.NewSource(seed))
	n := 0
	for time.Now().Before(end) {
		var sb strings.Builder
		rvGen(rng, &sb, 0, true)
		in := sb.String()
		e, err := ParseElement([]byte(in))
		if err != nil {
			t.Fatal(in, err)
		}
		n++
		for _, mk := range append(rvMakers, scSupported...) {
			planDifferential(t, mk, e)
			differential(t, mk, e)
			v := mk()
			if xml.Unmarshal([]byte(e.String()), v) == nil {
				encodeDifferential(t, v)
			}
		}
	}
	t.Log(n, "inputs")
}

var rvStrs = []string{"", "a", " b ", "\x00", "\xff", "x\r\ny", "<&>\"'", "\uFFFE", "é", "\t", "]]>", "\U0001F600", "a\x7fb"}

func rvFill(rng *rand.Rand, v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(rvStrs[rng.Intn(len(rvStrs))])
	case reflect.Bool:
		v.SetBool(rng.Intn(2) == 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt([]int64{0, 1, -1, 127, -128, 1 << 40}[rng.Intn(6)] % (1 << (v.Type().Bits() - 1)))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint([]uint64{0, 1, 255, 1 << 40}[rng.Intn(4)] % (1 << (v.Type().Bits() - 1)))
	case reflect.Float32, reflect.Float64:
		v.SetFloat([]float64{0, 1.5, -2, 1e21, 1e-7}[rng.Intn(5)])
	case reflect.Slice:
		if rng.Intn(3) == 0 {
			return
		}
		n := rng.Intn(3)
		if depth > 3 {
			n = 0
		}
		s := reflect.MakeSlice(v.Type(), n, n+rng.Intn(2))
		for i := 0; i < n; i++ {
			rvFill(rng, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Pointer:
		if depth > 3 || rng.Intn(2) == 0 {
			return
		}
		p := reflect.New(v.Type().Elem())
		rvFill(rng, p.Elem(), depth+1)
		v.Set(p)
	case reflect.Struct:
		if v.Type().String() == "xml.Name" {
			switch rng.Intn(4) {
			case 0:
				v.FieldByName("Local").SetString("nm")
			case 1:
				v.FieldByName("Local").SetString("nm")
				v.FieldByName("Space").SetString("urn:n")
			case 2:
				v.FieldByName("Local").SetString("1bad")
			}
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				rvFill(rng, v.Field(i), depth+1)
			}
		}
	}
}

func TestStructPlanEncodeRandomValues(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	end := time.Now().Add(2 * time.Second)
	rng := rand.New(rand.NewSource(seed))
	n := 0
	for time.Now().Before(end) {
		for _, mk := range []func() any{
			func() any { return new(scPlainKid) }, func() any { return new(scPlainInner) },
			func() any { return new(scRuntime) }, func() any { return new(rvTwoCD) },
			func() any { return new(rvShapes) }, func() any { return new(rvNoName) }, func() any { return new(rvNSOnly) },
		} {
			v := mk()
			rvFill(rng, reflect.ValueOf(v).Elem(), 0)
			n++
			encodeDifferential(t, v)
			pe, te := encodeFastWith(v, true), encodeFastWith(v, false)
			if (pe == nil) != (te == nil) || !pe.Equal(te) {
				t.Fatalf("%#v: plan %s tree %s", v, pe, te)
			}
		}
	}
	t.Log(n)
}
