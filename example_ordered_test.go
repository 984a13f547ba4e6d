package iq_test

import (
	"context"
	"encoding/xml"
	"fmt"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/iqtest"
)

// RosterPush is an RFC 6121 roster push, as far as this example needs.
type RosterPush struct {
	XMLName xml.Name `xml:"jabber:iq:roster query"`
	Ver     string   `xml:"ver,attr"`
}

// Roster pushes must be applied in the order the server sent them:
// OrderedBySender runs one sender's requests one at a time, in arrival
// order, while other senders' run in parallel.
func ExampleOrderedBySender() {
	c := iq.NewCallee(iqtest.NewRecorder())
	defer c.Close()
	var applied []string // no lock: one sender's handlers run one after another
	iq.HandleSet(c, func(_ context.Context, push *RosterPush) (*iq.Element, error) {
		applied = append(applied, push.Ver)
		return nil, nil
	}, iq.Allow(iq.OwnAccount("juliet@example.com/balcony")), iq.OrderedBySender())

	for _, ver := range []string{"v1", "v2", "v3", "v4"} {
		c.Receive(context.Background(), iqtest.NewRequest(
			`<iq type='set' id='`+ver+`'><query xmlns='jabber:iq:roster' ver='`+ver+`'/></iq>`))
	}
	if err := c.Drain(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(applied)
	// Output: [v1 v2 v3 v4]
}
