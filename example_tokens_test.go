package iq_test

import (
	"encoding/xml"
	"fmt"
	"strings"

	"github.com/xmpp-iq/iq"
)

// A stack that writes XML tokens rather than bytes (mellium.im/xmpp's
// Session.Send, say) takes an IQ's AppendTokens. Here an encoding/xml
// Encoder writes them, as such a stack's own encoder does.
func ExampleIQ_AppendTokens() {
	req := &iq.IQ{Type: iq.TypeGet, ID: "v1", To: "example.net",
		Payload: iq.NewElement("jabber:iq:version", "query")}
	toks, err := req.AppendTokens(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	var out strings.Builder
	enc := xml.NewEncoder(&out)
	for _, tok := range toks {
		if err := enc.EncodeToken(tok); err != nil {
			fmt.Println(err)
			return
		}
	}
	if err := enc.Flush(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(toks), "tokens:", out.String())
	// Output:
	// 4 tokens: <iq type="get" id="v1" to="example.net"><query xmlns="jabber:iq:version"></query></iq>
}
