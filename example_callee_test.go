package iq_test

import (
	"context"
	"encoding/xml"
	"fmt"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

func ExampleCallee_Get() {
	const ns = "jabber:iq:version"

	// Reply returns the reply instead of sending it, so the Recorder
	// records nothing.
	callee := iq.NewCallee(iqtest.NewRecorder())
	callee.Get(ns, "query", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		return iq.NewElement(ns, "query").Append(
			iq.NewElement(ns, "name").AppendText("example"),
			iq.NewElement(ns, "version").AppendText("1.0"),
		), nil
	})

	var req iq.IQ
	raw := `<iq type='get' id='v1' from='juliet@example.com/balcony' to='example.com'>` +
		`<query xmlns='jabber:iq:version'/></iq>`
	if err := xml.Unmarshal([]byte(raw), &req); err != nil {
		panic(err)
	}
	fmt.Println(callee.Reply(context.Background(), &req))

	// An element no handler is registered for.
	req.ID, req.Payload = "v2", iq.NewElement(ns, "other")
	reply := callee.Reply(context.Background(), &req)
	fmt.Println(reply.Type, reply.Error.Type, reply.Error.Condition)
	// Output:
	// <iq type="result" id="v1" to="juliet@example.com/balcony" from="example.com"><query xmlns="jabber:iq:version"><name>example</name><version>1.0</version></query></iq>
	// error cancel feature-not-implemented
}
