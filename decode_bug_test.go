package iq_test

import (
	"encoding/xml"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
)

// decodePaths are every way package iq decodes XML: through encoding/xml
// (the UnmarshalXML methods of Element, IQ and StanzaError) and through
// its own decoder (ParseElement, which stream.Conn's ElementBuilder path
// shares).
var decodePaths = []struct {
	name   string
	decode func(data []byte) error
}{
	{"Element.UnmarshalXML", func(data []byte) error { var e iq.Element; return xml.Unmarshal(data, &e) }},
	{"IQ.UnmarshalXML", func(data []byte) error { var i iq.IQ; return xml.Unmarshal(data, &i) }},
	{"StanzaError.UnmarshalXML", func(data []byte) error { var e iq.StanzaError; return xml.Unmarshal(data, &e) }},
	{"ParseElement", func(data []byte) error { _, err := iq.ParseElement(data); return err }},
}

// TestBugUndeclaredPrefixRoutedAsNamespace: <p:y/> with p declared nowhere
// was decoded as an element in namespace "p" (and routed so by a
// Callee). Every decode path now refuses it with a syntax error.
func TestBugUndeclaredPrefixRoutedAsNamespace(t *testing.T) {
	for _, c := range []struct{ name, in string }{
		{"payload", `<iq type='get' id='1'><p:y/></iq>`},
		{"deeper", `<iq type='get' id='1'><y xmlns='urn:y'><p:z/></y></iq>`},
		{"attribute", `<iq type='get' id='1' p:a='1'><y xmlns='urn:y'/></iq>`},
		{"out of scope", `<iq type='get' id='1'><y xmlns='urn:y' xmlns:p='urn:p'/><p:z/></iq>`},
		{"xmlns as element prefix", `<iq type='get' id='1'><xmlns:y/></iq>`},
		{"in a stanza error", `<iq type='error' id='1'><error type='cancel'><p:bad/></error></iq>`},
		// More declarations in scope than the decoder searches in order
		// (past smallScope it counts them in a map), then fewer again.
		// The namespaces are relative names (no ':'), so that the check
		// looks them up; q's declaration ends with <w>, and encoding/xml
		// hands the undeclared q:z over as namespace "q".
		{"out of scope, after many", `<iq type='get' id='1'><y xmlns='ny' xmlns:a='na' xmlns:b='nb' xmlns:c='nc' xmlns:d='nd'>` +
			`<w xmlns:e='ne' xmlns:f='nf' xmlns:g='ng' xmlns:h='nh' xmlns:q='q'><q:ok/></w><q:z/></y></iq>`},
	} {
		for _, p := range decodePaths {
			t.Run(c.name+"/"+p.name, func(t *testing.T) {
				in := c.in
				if p.name == "StanzaError.UnmarshalXML" {
					in = `<error type='cancel'>` + in + `</error>`
				}
				err := p.decode([]byte(in))
				var syn *xml.SyntaxError
				require.Error(t, err)
				assert.True(t, errors.As(err, &syn), "error %v is not a syntax error", err)
				assert.Contains(t, err.Error(), "undeclared namespace prefix")
			})
		}
	}
	// Declared prefixes still decode, to the namespaces they stand for.
	in := `<iq type='get' id='1'><p:y xmlns:p='urn:p' p:a='1' xml:lang='en'><p:z/></p:y></iq>`
	many := `<iq type='get' id='1'><y xmlns='ny' xmlns:a='na' xmlns:b='nb' xmlns:c='nc' xmlns:d='nd'>` +
		`<w xmlns:e='ne' xmlns:f='nf' xmlns:g='ng' xmlns:h='nh' xmlns:q='q'><q:ok h:x='1'/></w><a:z b:x='2'/></y></iq>`
	for _, p := range decodePaths {
		if p.name != "StanzaError.UnmarshalXML" {
			assert.NoError(t, p.decode([]byte(many)), "%s, many declarations", p.name)
		}
	}
	var got iq.IQ
	require.NoError(t, xml.Unmarshal([]byte(in), &got))
	require.NotNil(t, got.Payload)
	assert.Equal(t, xml.Name{Space: "urn:p", Local: "y"}, got.Payload.Name)
	el, err := iq.ParseElement([]byte(in))
	require.NoError(t, err)
	assert.True(t, el.Child("urn:p", "y").Equal(got.Payload))
}

// TestBugDuplicateAttributeLastWins: <iq type='get' … type='result'> was
// decoded as a result (the last attribute won). A start tag holding an
// attribute twice, by qualified or by expanded name, is now refused by
// every decode path with a syntax error.
func TestBugDuplicateAttributeLastWins(t *testing.T) {
	many := make([]string, 0, 40)
	for i := range 40 {
		many = append(many, fmt.Sprintf("a%d='%d'", i, i))
	}
	for _, c := range []struct{ name, in string }{
		{"type twice", `<iq type='get' id='1' type='result'><ping xmlns='urn:xmpp:ping'/></iq>`},
		{"id twice in payload", `<iq type='get' id='1'><q xmlns='urn:q' a='1' a='2'/></iq>`},
		{"one expanded name", `<iq type='get' id='1'><q xmlns='urn:q' xmlns:a='urn:x' xmlns:b='urn:x' a:v='1' b:v='2'/></iq>`},
		{"declaration twice", `<iq type='get' id='1'><q xmlns='urn:q' xmlns:a='urn:x' xmlns:a='urn:y'/></iq>`},
		{"among many", `<iq type='get' id='1'><q xmlns='urn:q' ` + strings.Join(many, " ") + ` a7='x'/></iq>`},
	} {
		for _, p := range decodePaths {
			t.Run(c.name+"/"+p.name, func(t *testing.T) {
				in := c.in
				if p.name == "StanzaError.UnmarshalXML" {
					in = `<error type='cancel'>` + in + `</error>`
				}
				err := p.decode([]byte(in))
				var syn *xml.SyntaxError
				require.Error(t, err)
				assert.True(t, errors.As(err, &syn), "error %v is not a syntax error", err)
				assert.Contains(t, err.Error(), "duplicate attribute")
			})
		}
	}
}

// interrupted returns an <iq> whose payload holds about size bytes of
// character data cut into short runs by kind: comments, processing
// instructions, CDATA sections or entity references.
func interrupted(kind string, size int) []byte {
	var cut string
	switch kind {
	case "comment":
		cut = "<!---->"
	case "procinst":
		cut = "<?p?>"
	case "cdata":
		cut = "<![CDATA[x]]>"
	case "entity":
		cut = "&amp;"
	}
	var b strings.Builder
	b.WriteString(`<iq type='result' id='1'><q xmlns='urn:q'>`)
	for b.Len() < size {
		b.WriteString("text")
		b.WriteString(cut)
	}
	b.WriteString(`</q></iq>`)
	return []byte(b.String())
}

// shaped returns an <iq> of about size bytes whose payload has many
// attributes, deep nesting or many siblings.
func shaped(kind string, size int) []byte {
	var b strings.Builder
	b.WriteString(`<iq type='result' id='1'><q xmlns='urn:q'`)
	switch kind {
	case "attributes":
		for i := 0; b.Len() < size; i++ {
			fmt.Fprintf(&b, " a%d='v'", i)
		}
		b.WriteString("/></iq>")
	case "nesting":
		b.WriteString(">")
		n := (size - b.Len()) / 7
		b.WriteString(strings.Repeat("<a>", n))
		b.WriteString(strings.Repeat("</a>", n))
		b.WriteString("</q></iq>")
	case "siblings":
		b.WriteString(">")
		for b.Len() < size {
			b.WriteString("<a/>")
		}
		b.WriteString("</q></iq>")
	}
	return []byte(b.String())
}

var linearKinds = []string{"comment", "procinst", "cdata", "entity", "attributes", "nesting", "siblings"}

func linearInput(kind string, size int) []byte {
	switch kind {
	case "attributes", "nesting", "siblings":
		return shaped(kind, size)
	}
	return interrupted(kind, size)
}

// allocated returns the bytes decode allocates for data.
func allocated(t *testing.T, decode func([]byte) error, data []byte) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	require.NoError(t, decode(data))
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestBugQuadraticTextDecoding: UnmarshalXML built an element's text by
// concatenating every piece of character data, so text cut by comments,
// processing instructions or CDATA sections cost time and memory in the
// square of its size (1 MiB took ~18 s). The bytes each decode path
// allocates for 1 MiB of such text must now stay within a small constant
// factor of the input (the quadratic code allocated thousands of times
// the input). Inputs shaped by their elements (many attributes, deep
// nesting, many siblings) cost more per byte, an Element per few bytes,
// but as much per byte at 256 KiB as at 64 KiB.
func TestBugQuadraticTextDecoding(t *testing.T) {
	const size = 1 << 20
	for _, kind := range linearKinds {
		data := linearInput(kind, size)
		for _, p := range decodePaths {
			if p.name == "StanzaError.UnmarshalXML" || p.name == "IQ.UnmarshalXML" {
				continue // the same decoder as Element's, kept out for time (see the benchmark)
			}
			t.Run(kind+"/"+p.name, func(t *testing.T) {
				switch kind {
				case "attributes", "nesting", "siblings":
					// Smaller sizes, to keep the test quick under -race.
					alloc := allocated(t, p.decode, linearInput(kind, size/4))
					quarter := allocated(t, p.decode, linearInput(kind, size/16))
					assert.LessOrEqual(t, alloc, 6*quarter,
						"%d bytes allocated for 256 KiB, %d for 64 KiB", alloc, quarter)
				default:
					const factor = 16
					alloc := allocated(t, p.decode, data)
					assert.LessOrEqual(t, alloc, uint64(factor*len(data)),
						"%d bytes allocated for %d bytes of input: %.1f×", alloc, len(data), float64(alloc)/float64(len(data)))
				}
			})
		}
	}
}

// BenchmarkDecodeLinear decodes inputs of 1 KiB to 1 MiB along every
// decode path, for each kind of input that could make one slower than
// linear: character data cut by comments, processing instructions, CDATA
// sections or entity references, many attributes, deep nesting, many
// siblings. MB/s (and ns/op divided by the size) stays flat across sizes.
//
//	go test -run '^$' -bench DecodeLinear -benchmem .
func BenchmarkDecodeLinear(b *testing.B) {
	for _, size := range []int{1 << 10, 16 << 10, 256 << 10, 1 << 20} {
		for _, kind := range linearKinds {
			data := linearInput(kind, size)
			for _, p := range decodePaths {
				if p.name == "StanzaError.UnmarshalXML" {
					continue
				}
				b.Run(fmt.Sprintf("size=%dKiB/%s/%s", size>>10, kind, p.name), func(b *testing.B) {
					b.SetBytes(int64(len(data)))
					b.ReportAllocs()
					for b.Loop() {
						if err := p.decode(data); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}
