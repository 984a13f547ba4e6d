package iq

import (
	"encoding/xml"
	"testing"
)

// benchForecast is bench/'s Typed struct: two attributes, a child's text
// and a repeated child of integers.
type benchForecast struct {
	XMLName xml.Name `xml:"urn:example:weather forecast"`
	City    string   `xml:"city,attr"`
	Days    int      `xml:"days,attr"`
	Sky     string   `xml:"sky"`
	Temps   []int    `xml:"temp"`
}

func sampleBenchForecast() *benchForecast {
	return &benchForecast{City: "Verona", Days: 3, Sky: "clear & bright", Temps: []int{21, 23, 19}}
}

// BenchmarkForecastCodec splits the typed round trip's codec work for
// bench/'s struct: encoding it, writing the element, parsing it back and
// decoding it.
func BenchmarkForecastCodec(b *testing.B) {
	v := sampleBenchForecast()
	e, err := encodeStruct(v)
	if err != nil {
		b.Fatal(err)
	}
	data, err := e.AppendXML(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeStruct(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out benchForecast
			if err := decodeStruct(e, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("write", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			if buf, err = appendElement(buf[:0], e, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseElement(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
