package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"testing"

	"github.com/xmpp-iq/iq"
)

// BenchmarkPayload is a payload of 1 KB and of 64 KB encoded and decoded
// alone, by iq and by encoding/xml, with no stream around it.
func BenchmarkPayload(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		el := sizedPayload(size)
		raw := mustXML(el)
		name := fmt.Sprintf("%dKB", size>>10)
		b.Run("encode/iq/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			buf := make([]byte, 0, len(raw)*2)
			for range b.N {
				var err error
				if buf, err = el.AppendXML(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("encode/encoding-xml/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			var buf bytes.Buffer
			for range b.N {
				buf.Reset()
				if err := xml.NewEncoder(&buf).Encode(el); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("decode/iq/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for range b.N {
				if _, err := iq.ParseElement(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("decode/encoding-xml/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for range b.N {
				var e iq.Element
				if err := xml.Unmarshal(raw, &e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
