package iq_test

import (
	"context"
	"fmt"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

func ExampleCaller_Get() {
	const ns = "jabber:iq:version"

	// The Recorder stands in for a stream: the "server" answers each
	// request asynchronously by handing the result to caller.Receive.
	rec := iqtest.NewRecorder()
	caller := iq.NewCaller(rec)
	defer caller.Close()
	rec.OnSend(func(ctx context.Context, req *iq.IQ) error {
		go func() {
			version := iq.NewElement(ns, "query").Append(
				iq.NewElement(ns, "name").AppendText("Example Server"),
				iq.NewElement(ns, "version").AppendText("1.0"),
			)
			caller.Receive(req.Result(version))
		}()
		return nil
	})

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

func ExampleEndpoint() {
	const ns = "urn:example:echo"

	// A Pair stands in for two streams and a server between them.
	p := iqtest.NewPair("juliet@example.com/balcony", "echo.example.com")
	defer p.Close()
	client, service := p.A, p.B

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
