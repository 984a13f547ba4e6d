package iq

import (
	"encoding/xml"
	"testing"
)

type benchCodecQuery struct {
	XMLName xml.Name         `xml:"urn:example:bench query"`
	ID      int              `xml:"id,attr"`
	Name    string           `xml:"name"`
	Version string           `xml:"version"`
	OS      string           `xml:"os,omitempty"`
	Items   []benchCodecItem `xml:"item"`
}

type benchCodecItem struct {
	Key   string `xml:"key,attr"`
	Value string `xml:",chardata"`
}

// BenchmarkStructCodec compares, in one binary, the encoding/xml path the
// typed handlers used (old) with decoding from and encoding into the tree
// (new).
func BenchmarkStructCodec(b *testing.B) {
	v := &benchCodecQuery{ID: 7, Name: "iq", Version: "1.0", OS: "linux", Items: []benchCodecItem{
		{Key: "a", Value: "alpha"}, {Key: "b", Value: "beta"}, {Key: "c", Value: "gamma"},
	}}
	e, err := MarshalElement(v)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decode/old", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out benchCodecQuery
			if err := e.decodeXML(&out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out benchCodecQuery
			if err := decodeStruct(e, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode/old", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := marshalElementXML(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode/new", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeStruct(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
