package iq_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

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

// streamHeader opens the streams the stream benchmarks decode.
const streamHeader = `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`

// replayReader returns a stream header, then body over and over, without
// end: a Decoder reading it never runs out of stanzas, so that a
// benchmark needs neither to re-create it nor to stop its timer (which,
// with ReportAllocs, stops the world each time).
type replayReader struct {
	head, body []byte
	off        int // in head, then in body
	inBody     bool
}

// Read copies as much of the endless input as p holds.
func (r *replayReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		src := r.head
		if r.inBody {
			src = r.body
		}
		c := copy(p[n:], src[r.off:])
		n += c
		if r.off += c; r.off == len(src) {
			r.off, r.inBody = 0, true
		}
	}
	return n, nil
}

// streamDecoder returns a Decoder reading the stream header and then the
// stanzas of body over and over, its header already read.
func streamDecoder(b *testing.B, body []byte) *xmldec.Decoder {
	d := xmldec.NewDecoder(&replayReader{head: []byte(streamHeader), body: body}, 1<<20)
	if it, err := d.Next(nil); err != nil || it.Kind != xmldec.KindStart {
		b.Fatal(it.Kind, err)
	}
	return d
}

// BenchmarkStreamDecode reads stanzas of 100 B, 10 KB and 500 KB from a
// stream as stream.Conn does: one Decoder and one ElementBuilder for many
// stanzas, each element kept by its reader.
//
//	go test -run '^$' -bench 'ParseElement|StreamDecode' -benchmem .
func BenchmarkStreamDecode(b *testing.B) {
	for _, sz := range payloadSizes {
		stanza := sizedStanza(sz.size)
		b.Run(sz.name, func(b *testing.B) {
			d := streamDecoder(b, bytes.Repeat(stanza, 16))
			var build iq.ElementBuilder
			b.SetBytes(int64(len(stanza)))
			b.ReportAllocs()
			for b.Loop() {
				build.Reset()
				it, err := d.Next(&build)
				if err != nil || it.Kind != xmldec.KindElement || build.Root() == nil {
					b.Fatal(it.Kind, err)
				}
			}
		})
	}
}

// smallStanzas are a request and its reply as a round trip carries them:
// the small stanzas a stream reads most, about 140 bytes each.
var smallStanzas = []string{
	`<iq type='get' id='a1b2c3d4e5f6a7b8' to='b@example.net/r' from='a@example.net/r'><query xmlns='urn:example:echo'><v>hello</v></query></iq>`,
	`<iq type='result' id='a1b2c3d4e5f6a7b8' to='a@example.net/r' from='b@example.net/r'><query xmlns='urn:example:echo'><v>hello</v></query></iq>`,
}

// reportCPU reports the process's CPU time per op since start (see
// processCPU), as cpu-ns/op, where the platform tells it.
func reportCPU(b *testing.B, start time.Duration, ok bool) {
	end, ok2 := processCPU()
	if ok && ok2 && b.N > 0 {
		b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkStreamDecodeSmall measures the CPU cost of reading one small
// stanza (smallStanzas, alternately) from a stream as stream.Conn's serve
// does: Reset, Decoder.Next into the ElementBuilder, and RootIQ. The
// Decoder reads an endless stream and the timer never stops, so that the
// figure is the per-stanza cost alone, allocations included. With -cpu 1
// its cpu-ns/op, the process's CPU time per stanza (the collector's
// included), is the figure to compare on a shared machine, where another
// program's load inflates ns/op.
//
//	go test -run '^$' -bench StreamDecodeSmall -cpu 1 -benchmem .
func BenchmarkStreamDecodeSmall(b *testing.B) {
	body := []byte(strings.Repeat(strings.Join(smallStanzas, ""), 32))
	d := streamDecoder(b, body)
	var build iq.ElementBuilder
	b.SetBytes(int64(len(body) / 64))
	b.ReportAllocs()
	start, ok := processCPU()
	for b.Loop() {
		build.Reset()
		it, err := d.Next(&build)
		if err != nil || it.Kind != xmldec.KindElement {
			b.Fatal(it.Kind, err)
		}
		if _, err := build.RootIQ(); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start, ok)
}
