package iq_test

import (
	"context"
	"fmt"
	"net"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// A program that reads big payloads can hand the memory of each tree back
// once it is done with it: the answering end with WithTreeReuse, the
// asking end with Release on each response. Strings read from a tree stay
// valid; its elements do not.
func ExampleIQ_Release() {
	const ns = "urn:example:catalog"
	a, b := net.Pipe()
	client, server := stream.New(a), stream.New(b)
	asking := iq.NewEndpoint(client)
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
	// Output:
	// 100 items
	// true A-99
}
