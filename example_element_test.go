package iq_test

import (
	"fmt"

	"github.com/xmpp-iq/iq"
)

func ExampleNewElement() {
	item := iq.NewElement("urn:example:echo", "item", "id", "7", "kind", "test").
		Append(iq.NewElement("urn:example:echo", "body").AppendText("hello & goodbye"))
	fmt.Println(item)
	fmt.Println(item.Child("urn:example:echo", "body").Text())
	// Output:
	// <item xmlns="urn:example:echo" id="7" kind="test"><body>hello &amp; goodbye</body></item>
	// hello & goodbye
}
