package iq_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

func ExampleCallee_HandleInline() {
	const ns = "urn:example:clock"
	p := iqtest.NewPair("client@example.com/a", "example.com")
	defer p.Close()

	// Answered from memory at once: worth running on the read loop.
	p.B.Callee.HandleInline(iq.TypeGet, ns, "now", iq.HandlerFunc(
		func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
			return iq.NewElement(ns, "now").AppendText("12:00"), nil
		}))
	// A request made from an inline handler on its own stream could never
	// read its response: it fails at once rather than hanging.
	p.B.Callee.HandleInline(iq.TypeGet, ns, "relay", iq.HandlerFunc(
		func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
			_, err := p.B.Caller.Get(ctx, req.From, iq.NewElement(ns, "now"))
			fmt.Println("relay:", errors.Is(err, iq.ErrInlineCall))
			return nil, err
		}))

	res, err := p.A.Caller.Get(context.Background(), p.BJID, iq.NewElement(ns, "now"))
	fmt.Println(res.Text(), err)
	_, err = p.A.Caller.Get(context.Background(), p.BJID, iq.NewElement(ns, "relay"))
	var serr *iq.StanzaError
	fmt.Println(errors.As(err, &serr), serr.Condition)
	// Output:
	// 12:00 <nil>
	// relay: true
	// true internal-server-error
}
