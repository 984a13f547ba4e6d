package iq_test

import (
	"context"
	"encoding/xml"
	"net"
	"sync"
	"testing"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// benchQuery is a typed payload of the size typed handlers usually see: an
// attribute, a few child elements and a short list.
type benchQuery struct {
	XMLName xml.Name    `xml:"urn:example:bench query"`
	ID      int         `xml:"id,attr"`
	Name    string      `xml:"name"`
	Version string      `xml:"version"`
	OS      string      `xml:"os,omitempty"`
	Items   []benchItem `xml:"item"`
}

type benchItem struct {
	Key   string `xml:"key,attr"`
	Value string `xml:",chardata"`
}

func benchQueryValue() *benchQuery {
	return &benchQuery{ID: 7, Name: "iq", Version: "1.0", OS: "linux", Items: []benchItem{
		{Key: "a", Value: "alpha"}, {Key: "b", Value: "beta"}, {Key: "c", Value: "gamma"},
	}}
}

// BenchmarkTypedRoundTrip is GetAs answered by HandleGet over net.Pipe:
// the request struct encoded, decoded by the handler, the response struct
// encoded and decoded by the caller.
func BenchmarkTypedRoundTrip(b *testing.B) {
	p1, p2 := net.Pipe()
	cc, sc := stream.New(p1), stream.New(p2)
	client := iq.NewEndpoint(cc, iq.WithMaxPending(1<<20))
	server := iq.NewEndpoint(sc, iq.WithMaxInFlight(1024))
	iq.HandleGet(server.Callee, func(ctx context.Context, req *benchQuery) (*benchQuery, error) {
		req.ID++
		return req, nil
	})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = cc.Serve(context.Background(), client, nil) }()
	go func() { defer wg.Done(); _ = sc.Serve(context.Background(), server, nil) }()
	b.Cleanup(func() { _ = cc.Close(); wg.Wait() })
	ctx := context.Background()
	req := benchQueryValue()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := iq.GetAs[benchQuery](ctx, client.Caller, "", req)
		if err != nil || res.ID != 8 || len(res.Items) != 3 {
			b.Fatalf("round trip: %+v, %v", res, err)
		}
	}
}
