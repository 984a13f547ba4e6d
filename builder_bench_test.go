package iq_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/internal/xmldec"
)

// payloadSizes are the payload sizes of the throughput figures.
var payloadSizes = []struct {
	name string
	size int
}{{"100B", 100}, {"10KB", 10 << 10}, {"500KB", 500 << 10}}

// sizedStanza returns an <iq> result whose payload is about size bytes:
// items with attributes, plain character data and character data with
// escapes, as a typical data form or roster carries.
func sizedStanza(size int) []byte {
	var b strings.Builder
	b.WriteString(`<iq xmlns='jabber:client' type='result' id='b7' from='a@example.net/r' to='b@example.net/r'>`)
	b.WriteString(`<query xmlns='urn:example:data'>`)
	start := b.Len()
	for i := 0; b.Len()-start < size-len("</query></iq>")-60; i++ {
		if i%2 == 0 {
			fmt.Fprintf(&b, `<item id='%d' kind='plain'><v>hello world, item %d</v></item>`, i, i)
		} else {
			fmt.Fprintf(&b, `<item id='%d' kind='a&amp;b'>some &lt;text&gt; &amp; more</item>`, i)
		}
	}
	b.WriteString(`</query></iq>`)
	return []byte(b.String())
}

// BenchmarkParseElement decodes stanzas of 100 B, 10 KB and 500 KB with
// ParseElement: the decoder's share of a payload's round trip.
//
//	go test -run '^$' -bench 'ParseElement|StreamDecode' -benchmem .
func BenchmarkParseElement(b *testing.B) {
	for _, sz := range payloadSizes {
		data := sizedStanza(sz.size)
		b.Run(sz.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := iq.ParseElement(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStreamDecode reads stanzas of 100 B, 10 KB and 500 KB from a
// stream as stream.Conn does: one Decoder and one ElementBuilder for many
// stanzas, each element kept by its reader.
func BenchmarkStreamDecode(b *testing.B) {
	const header = `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`
	for _, sz := range payloadSizes {
		stanza := sizedStanza(sz.size)
		const n = 16
		in := []byte(header + strings.Repeat(string(stanza), n))
		b.Run(sz.name, func(b *testing.B) {
			b.SetBytes(int64(len(stanza)))
			b.ReportAllocs()
			var d *xmldec.Decoder
			var build iq.ElementBuilder
			left := 0
			for b.Loop() {
				if left == 0 {
					b.StopTimer()
					d = xmldec.NewDecoder(bytes.NewReader(in), 1<<20)
					if _, err := d.Next(nil); err != nil {
						b.Fatal(err)
					}
					left = n
					b.StartTimer()
				}
				build.Reset()
				it, err := d.Next(&build)
				if err != nil || it.Kind != xmldec.KindElement || build.Root() == nil {
					b.Fatal(it.Kind, err)
				}
				left--
			}
		})
	}
}
