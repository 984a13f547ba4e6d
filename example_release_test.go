package iq_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"net"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// A program that reads big payloads can hand the memory of each tree back
// once it is done with it, on Endpoints made WithTreeReuse: the answering
// end's Callee releases each request once answered, the asking end calls
// Release on each response, and GetAs releases the responses it decodes.
// Strings read from a tree stay valid; its elements do not.
func ExampleIQ_Release() {
	const ns = "urn:example:catalog"
	a, b := net.Pipe()
	client, server := stream.New(a), stream.New(b)
	asking := iq.NewEndpoint(client, iq.WithTreeReuse())
	answering := iq.NewEndpoint(server, iq.WithTreeReuse())
	// The reply may hold parts of the request (here, all of it): the
	// request is released only once the reply has been handed to the
	// stream. Nothing of req may be kept past the handler's return.
	answering.Callee.Get(ns, "items", func(_ context.Context, req *iq.IQ) (*iq.Element, error) {
		return req.Payload, nil
	})
	go client.Serve(context.Background(), asking, nil)
	go server.Serve(context.Background(), answering, nil)
	defer client.Close()

	items := iq.NewElement(ns, "items")
	for i := range 100 {
		items.Append(iq.NewElement(ns, "item", "sku", fmt.Sprint("A-", i)))
	}
	resp, err := asking.Caller.Request(context.Background(), &iq.IQ{Type: iq.TypeGet, Payload: items})
	if err != nil {
		fmt.Println(err)
		return
	}
	var last string
	for item := range resp.Payload.Children() {
		last = item.AttrValue("sku") // a string: still valid after Release
	}
	fmt.Println(resp.Payload.NumChildren(), "items")
	resp.Release()
	fmt.Println(resp.Payload == nil, last)

	// GetAs decodes the response into a value that holds only strings
	// from the tree, and releases the response itself.
	type catalog struct {
		XMLName xml.Name `xml:"urn:example:catalog items"`
		Items   []struct {
			SKU string `xml:"sku,attr"`
		} `xml:"item"`
	}
	c, err := iq.GetAs[catalog](context.Background(), asking.Caller, "", items)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(c.Items), "items, the last", c.Items[len(c.Items)-1].SKU)
	// Output:
	// 100 items
	// true A-99
	// 100 items, the last A-99
}
