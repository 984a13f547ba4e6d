package iq_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

func ExampleCallee_Use() {
	callee := iq.NewCallee(iqtest.NewRecorder())
	callee.Use(
		// Only our own account (our server, on a client stream) and
		// capulet.lit may reach any handler; the others are told nothing
		// is here.
		iq.AllowHidden(iq.AnyOf(iq.OwnAccount("juliet@example.com/balcony"), iq.Domains("capulet.lit"))),
		// Every handler gets 50 ms.
		iq.Timeout(50*time.Millisecond),
	)
	callee.Get("urn:example:weather", "forecast", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		if req.Payload.AttrValue("city") == "Atlantis" {
			<-ctx.Done() // takes forever
		}
		return nil, nil
	})

	for _, raw := range []string{
		`<iq type='get' id='1'><forecast xmlns='urn:example:weather' city='Verona'/></iq>`,
		`<iq type='get' id='2' from='nurse@capulet.lit/kitchen'><forecast xmlns='urn:example:weather' city='Verona'/></iq>`,
		`<iq type='get' id='3' from='romeo@montague.lit/orchard'><forecast xmlns='urn:example:weather' city='Verona'/></iq>`,
		`<iq type='get' id='4' from='nurse@capulet.lit/kitchen'><forecast xmlns='urn:example:weather' city='Atlantis'/></iq>`,
	} {
		reply := callee.Reply(context.Background(), iqtest.NewRequest(raw))
		if reply.Error != nil {
			fmt.Println(reply.ID, reply.Error.Type, reply.Error.Condition)
		} else {
			fmt.Println(reply.ID, reply.Type)
		}
	}
	// Output:
	// 1 result
	// 2 result
	// 3 cancel service-unavailable
	// 4 wait remote-server-timeout
}

func ExampleAllow() {
	callee := iq.NewCallee(iqtest.NewRecorder())
	// A roster push is only ever taken from our own server: no from, or
	// our bare JID. The middleware guards this handler alone.
	iq.HandleSet(callee, func(ctx context.Context, req *Weather) (*Weather, error) {
		return nil, nil
	}, iq.Allow(iq.OwnAccount("juliet@example.com/balcony")))

	for _, from := range []string{"", "juliet@example.com", "juliet@example.com/other", "romeo@montague.lit"} {
		req := iqtest.NewRequest(`<iq type='set' id='push'><forecast xmlns='urn:example:weather' city='x'/></iq>`)
		req.From = from
		reply := callee.Reply(context.Background(), req)
		fmt.Printf("%q: %s", from, reply.Type)
		if reply.Error != nil {
			fmt.Printf(" %s/%s", reply.Error.Type, reply.Error.Condition)
		}
		fmt.Println()
	}
	// Output:
	// "": result
	// "juliet@example.com": result
	// "juliet@example.com/other": error auth/forbidden
	// "romeo@montague.lit": error auth/forbidden
}

func ExampleExpvarMetrics() {
	m := iq.NewExpvarMetrics()
	// expvar.Publish("iq", m) makes it part of /debug/vars.
	callee := iq.NewCallee(iqtest.NewRecorder())
	callee.Use(iq.Observe(m))
	callee.Get("urn:xmpp:ping", "ping", func(context.Context, *iq.IQ) (*iq.Element, error) { return nil, nil })
	callee.Reply(context.Background(), iqtest.NewRequest(`<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>`))

	var counts struct {
		Requests map[string]int `json:"requests"`
		Replies  map[string]int `json:"replies"`
	}
	if err := json.Unmarshal([]byte(m.String()), &counts); err != nil {
		panic(err)
	}
	fmt.Println(counts.Requests, counts.Replies)
	// Output:
	// map[{urn:xmpp:ping}ping:1] map[result:1]
}
