package iq_test

import (
	"context"
	"encoding/xml"
	"fmt"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

// Weather is a request and response payload, named by its XMLName tag.
type Weather struct {
	XMLName xml.Name `xml:"urn:example:weather forecast"`
	City    string   `xml:"city,attr"`
	Days    int      `xml:"days,attr,omitempty"`
	Sky     string   `xml:"sky,omitempty"`
}

func ExampleGetAs() {
	p := iqtest.NewPair("juliet@example.com/balcony", "weather.example.com")
	defer p.Close()

	// The service: routed by Weather's XMLName, decoded for the handler.
	iq.HandleGet(p.B.Callee, func(ctx context.Context, req *Weather) (*Weather, error) {
		if req.City == "" {
			return nil, iq.NewError(iq.Modify, iq.BadRequest, "which city?")
		}
		return &Weather{City: req.City, Sky: "clear"}, nil
	})

	// The client: encoded from a Weather, the result decoded into one.
	w, err := iq.GetAs[Weather](context.Background(), p.A.Caller, p.BJID, Weather{City: "Verona"})
	fmt.Println(w.City, w.Sky, err)

	_, err = iq.GetAs[Weather](context.Background(), p.A.Caller, p.BJID, Weather{})
	fmt.Println(err)
	// Output:
	// Verona clear <nil>
	// iq: stanza error modify/bad-request: which city?
}

func ExampleHandleGet() {
	callee := iq.NewCallee(iqtest.NewRecorder())
	iq.HandleGet(callee, func(ctx context.Context, req *Weather) (*Weather, error) {
		from := iq.RequestFromContext(ctx).From
		return &Weather{City: req.City, Sky: "rain, says " + from}, nil
	})

	reply := callee.Reply(context.Background(), iqtest.NewRequest(
		`<iq type='get' id='w1' from='juliet@example.com/balcony'>`+
			`<forecast xmlns='urn:example:weather' city='Mantua'/></iq>`))
	fmt.Println(reply.Payload)

	// A payload that does not decode into a Weather never reaches the handler.
	reply = callee.Reply(context.Background(), iqtest.NewRequest(
		`<iq type='get' id='w2'><forecast xmlns='urn:example:weather' city='Rome' days='many'/></iq>`))
	fmt.Println(reply.Error)
	// Output:
	// <forecast xmlns="urn:example:weather" city="Mantua"><sky>rain, says juliet@example.com/balcony</sky></forecast>
	// iq: stanza error modify/bad-request: malformed <forecast xmlns='urn:example:weather'/>
}
