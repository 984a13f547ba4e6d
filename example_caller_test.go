package iq_test

import (
	"context"
	"encoding/xml"
	"fmt"

	"github.com/xmpp-iq/iq"
)

func ExampleCaller_Get() {
	const ns = "jabber:iq:version"

	// The Sender stands in for a stream: the "server" answers each request
	// asynchronously by handing the result to caller.Receive.
	var caller *iq.Caller
	caller = iq.NewCaller(iq.SenderFunc(func(ctx context.Context, req *iq.IQ) error {
		go func() {
			version := iq.NewElement(ns, "query").Append(
				iq.NewElement(ns, "name").AppendText("Example Server"),
				iq.NewElement(ns, "version").AppendText("1.0"),
			)
			caller.Receive(req.Result(version))
		}()
		return nil
	}))
	defer caller.Close()

	res, err := caller.Get(context.Background(), "example.com", iq.NewElement(ns, "query"))
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(res.Child(ns, "name").Text(), res.Child(ns, "version").Text())
	fmt.Println(res)
	// Output:
	// Example Server 1.0
	// <query xmlns="jabber:iq:version"><name>Example Server</name><version>1.0</version></query>
}

// examplePipe returns a Sender that serializes each IQ and delivers it,
// parsed back, to the Endpoint *to points at, stamped from the given
// address as a server would.
func examplePipe(from string, to **iq.Endpoint) iq.Sender {
	return iq.SenderFunc(func(ctx context.Context, out *iq.IQ) error {
		b, err := xml.Marshal(out)
		if err != nil {
			return err
		}
		in := new(iq.IQ)
		if err := xml.Unmarshal(b, in); err != nil {
			return err
		}
		in.From = from
		(*to).Receive(ctx, in)
		return nil
	})
}

func ExampleEndpoint() {
	const ns = "urn:example:echo"

	var client, service *iq.Endpoint
	client = iq.NewEndpoint(examplePipe("juliet@example.com/balcony", &service),
		iq.WithLocalJID("juliet@example.com/balcony"))
	service = iq.NewEndpoint(examplePipe("echo.example.com", &client))
	defer client.Close()
	defer service.Close()

	service.Callee.Get(ns, "echo", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		return iq.NewElement(ns, "echo").AppendText(req.Payload.Text() + " from " + req.From), nil
	})

	res, err := client.Caller.Get(context.Background(), "echo.example.com",
		iq.NewElement(ns, "echo").AppendText("hello"))
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(res.Text())

	_, err = client.Caller.Get(context.Background(), "echo.example.com", iq.NewElement(ns, "shout"))
	fmt.Println(err)
	// Output:
	// hello from juliet@example.com/balcony
	// iq: stanza error cancel/feature-not-implemented
}
