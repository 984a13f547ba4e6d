// Command loopback runs a Caller and a Callee that talk through an
// in-memory pipe: every IQ is serialized to XML on one side and parsed on
// the other, as it would be on a real stream. It prints a get, a set, a
// stanza error and a timeout.
package main

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/xmpp-iq/iq"
)

const ns = "urn:example:echo"

// pipe returns a Sender that delivers each IQ, as XML, to the endpoint
// *to points at, stamping the sender's address as a server would.
func pipe(from string, to **iq.Endpoint) iq.Sender {
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
		fmt.Printf("  wire: %s\n", b)
		(*to).Receive(ctx, in)
		return nil
	})
}

func main() {
	var client, service *iq.Endpoint
	client = iq.NewEndpoint(pipe("juliet@example.com/balcony", &service),
		iq.WithLocalJID("juliet@example.com/balcony"))
	service = iq.NewEndpoint(pipe("echo.example.com", &client))
	defer client.Close()
	defer service.Close()

	service.Callee.Get(ns, "echo", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		return iq.NewElement(ns, "echo").AppendText(req.Payload.Text()), nil
	})
	var stored string
	service.Callee.Set(ns, "store", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		if req.Payload.Text() == "" {
			return nil, iq.NewError(iq.Modify, iq.NotAcceptable, "nothing to store")
		}
		stored = req.Payload.Text()
		return nil, nil // an empty result
	})
	service.Callee.Get(ns, "slow", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		time.Sleep(200 * time.Millisecond)
		return nil, nil
	})

	ctx := context.Background()

	fmt.Println("get:")
	res, err := client.Caller.Get(ctx, "echo.example.com", iq.NewElement(ns, "echo").AppendText("hello"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("  result payload: %s\n", res)

	fmt.Println("set:")
	if _, err := client.Caller.Set(ctx, "echo.example.com", iq.NewElement(ns, "store").AppendText("42")); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("  stored: %s\n", stored)

	fmt.Println("stanza error:")
	_, err = client.Caller.Set(ctx, "echo.example.com", iq.NewElement(ns, "store"))
	var serr *iq.StanzaError
	if !errors.As(err, &serr) {
		log.Fatalf("want a stanza error, got %v", err)
	}
	fmt.Printf("  %s/%s: %s\n", serr.Type, serr.Condition, serr.Text)

	fmt.Println("timeout:")
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = client.Caller.Get(tctx, "echo.example.com", iq.NewElement(ns, "slow"))
	fmt.Printf("  %v (ErrTimeout: %t)\n", err, errors.Is(err, iq.ErrTimeout))
	time.Sleep(250 * time.Millisecond) // let the late reply arrive and be dropped
	fmt.Printf("  pending after the late reply: %d\n", client.Caller.Pending())
}
