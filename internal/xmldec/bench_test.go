package xmldec

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"testing"
)

// payload returns an <iq> of about size bytes: a roster with items,
// attributes, namespaces, entities and character data.
func payload(size int) []byte {
	var b strings.Builder
	b.WriteString(`<iq type='result' id='roster_1' to='juliet@example.com/balcony' from='example.com' xml:lang='en'><query xmlns='jabber:iq:roster' ver='ver11'>`)
	for i := 0; b.Len() < size-60; i++ {
		fmt.Fprintf(&b, `<item jid='user%d@example.net' name='User &amp; %d' subscription='both'><group>Friends</group></item>`, i, i)
	}
	b.WriteString(`</query></iq>`)
	return []byte(b.String())
}

var sizes = []struct {
	name string
	size int
}{{"1KB", 1 << 10}, {"64KB", 64 << 10}}

func BenchmarkDecode(b *testing.B) {
	for _, sz := range sizes {
		data := payload(sz.size)
		b.Run("encoding_xml/"+sz.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				var el refElement
				if err := xml.Unmarshal(data, &el); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("xmldec/"+sz.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				var t Tree
				if err := Decode(data, &t); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStream reads stanzas from a stream as stream/conn.go does, per
// stanza: one Decoder over many stanzas.
func BenchmarkStream(b *testing.B) {
	for _, sz := range sizes {
		stanza := payload(sz.size)
		const n = 64
		in := []byte(streamHeader + strings.Repeat(string(stanza)+"\n", n) + "</stream:stream>")
		b.Run("encoding_xml/"+sz.name, func(b *testing.B) {
			b.SetBytes(int64(len(stanza) + 1))
			b.ReportAllocs()
			var dec *xml.Decoder
			left := 0
			for b.Loop() {
				if left == 0 {
					b.StopTimer()
					dec = xml.NewDecoder(bytes.NewReader(in))
					if _, err := dec.Token(); err != nil {
						b.Fatal(err)
					}
					left = n
					b.StartTimer()
				}
				tok, err := dec.Token()
				if err != nil {
					b.Fatal(err)
				}
				start := tok.(xml.StartElement)
				var el refElement
				if err := dec.DecodeElement(&el, &start); err != nil {
					b.Fatal(err)
				}
				if _, err := dec.Token(); err != nil { // "\n"
					b.Fatal(err)
				}
				left--
			}
		})
		b.Run("xmldec/"+sz.name, func(b *testing.B) {
			b.SetBytes(int64(len(stanza) + 1))
			b.ReportAllocs()
			var d *Decoder
			left := 0
			for b.Loop() {
				if left == 0 {
					b.StopTimer()
					d = NewDecoder(bytes.NewReader(in), 1<<20)
					if _, err := d.Next(nil); err != nil {
						b.Fatal(err)
					}
					left = n
					b.StartTimer()
				}
				var t Tree
				it, err := d.Next(&t)
				if err != nil || it.Kind != KindElement {
					b.Fatal(it.Kind, err)
				}
				if _, err := d.Next(nil); err != nil && err != io.EOF {
					b.Fatal(err)
				}
				left--
			}
		})
	}
}

// linearInput returns a stanza of about size bytes of one kind that could
// make decoding slower than linear: character data cut by comments,
// processing instructions, CDATA sections or entity references, many
// attributes, deep nesting or many siblings.
func linearInput(kind string, size int) []byte {
	var b strings.Builder
	b.WriteString(`<iq type='result' id='1'><q xmlns='urn:q'`)
	cut := map[string]string{"comment": "<!---->", "procinst": "<?p?>", "cdata": "<![CDATA[x]]>", "entity": "&amp;"}
	switch kind {
	case "attributes":
		for i := 0; b.Len() < size; i++ {
			fmt.Fprintf(&b, " a%d='v'", i)
		}
		b.WriteString("/></iq>")
	case "nesting":
		b.WriteString(">")
		n := (size - b.Len()) / 7
		b.WriteString(strings.Repeat("<a>", n) + strings.Repeat("</a>", n) + "</q></iq>")
	case "siblings":
		b.WriteString(">")
		for b.Len() < size {
			b.WriteString("<a/>")
		}
		b.WriteString("</q></iq>")
	default:
		b.WriteString(">")
		for b.Len() < size {
			b.WriteString("text" + cut[kind])
		}
		b.WriteString("</q></iq>")
	}
	return []byte(b.String())
}

// BenchmarkDecodeLinear reads one stanza of 1 KiB to 1 MiB from a stream,
// as stream.Conn does, for each kind of linearInput: MB/s stays flat
// across sizes. (Package iq's BenchmarkDecodeLinear covers its other
// decode paths.)
//
//	go test -run '^$' -bench DecodeLinear -benchmem ./internal/xmldec
func BenchmarkDecodeLinear(b *testing.B) {
	for _, size := range []int{1 << 10, 16 << 10, 256 << 10, 1 << 20} {
		for _, kind := range []string{"comment", "procinst", "cdata", "entity", "attributes", "nesting", "siblings"} {
			stanza := linearInput(kind, size)
			in := []byte(streamHeader + string(stanza) + "</stream:stream>")
			b.Run(fmt.Sprintf("size=%dKiB/%s/stream", size>>10, kind), func(b *testing.B) {
				b.SetBytes(int64(len(stanza)))
				b.ReportAllocs()
				for b.Loop() {
					d := NewDecoder(bytes.NewReader(in), 2<<20)
					if _, err := d.Next(nil); err != nil {
						b.Fatal(err)
					}
					var t Tree
					if it, err := d.Next(&t); err != nil || it.Kind != KindElement {
						b.Fatal(it.Kind, err)
					}
				}
			})
		}
	}
}

// itemsPayload is a query of items shaped as the bench module's payload
// rows (an attribute needing no escape, one needing one, character data
// needing three), at least size bytes long.
func itemsPayload(size int) []byte {
	var b strings.Builder
	b.WriteString(`<query xmlns='urn:example:data'>`)
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, `<item id="%06d" kind="a&amp;b">some &lt;text&gt; &amp; more </item>`, i)
	}
	b.WriteString(`</query>`)
	return []byte(b.String())
}

// discard is a Handler that keeps nothing.
type discard struct{}

func (discard) StartElement(xml.Name, []xml.Attr) {}
func (discard) Text(string)                       {}
func (discard) EndElement()                       {}

// BenchmarkDecodeStages splits the decoding of a 64 KB payload into what
// each stage adds: checking it alone (no Handler: nothing is recorded),
// recording it and replaying it to a Handler that keeps nothing, and
// building a tree of it.
func BenchmarkDecodeStages(b *testing.B) {
	data := itemsPayload(64 << 10)
	for _, st := range []struct {
		name string
		h    func() Handler
	}{
		{"check", func() Handler { return nil }},
		{"record", func() Handler { return discard{} }},
		{"tree", func() Handler { return new(Tree) }},
	} {
		b.Run(st.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := Decode(data, st.h()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
