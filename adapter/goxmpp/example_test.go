package goxmppiq_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/xmppo/go-xmpp"

	"github.com/xmpp-iq/iq"
	goxmppiq "github.com/xmpp-iq/iq/adapter/goxmpp"
	"github.com/xmpp-iq/iq/version"
)

// A complete client: log in with go-xmpp, answer a custom get, ask the
// server for its software version, and tell a result from a stanza error
// and a timeout.
func Example() {
	client, err := (&xmpp.Options{Host: "example.com:5222", User: "juliet@example.com",
		Password: os.Getenv("XMPP_PASSWORD"), NoTLS: true, StartTLS: true}).NewClient()
	if err != nil {
		log.Fatal(err)
	}
	a := goxmppiq.New(client) // local JID: the bound juliet@example.com/…
	a.Endpoint.Callee.Get("urn:example:echo", "echo", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		return iq.NewElement("urn:example:echo", "echo").AppendText(req.Payload.Text()), nil
	})
	// Every <iq> to the Endpoint, everything else (go-xmpp's Chat,
	// Presence, …) to the function; the Endpoint closes when Recv fails.
	go a.Serve(context.Background(), func(v any) { fmt.Printf("%T\n", v) })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := version.Get(ctx, a.Endpoint.Caller, "example.com")
	var serr *iq.StanzaError
	switch {
	case err == nil:
		fmt.Println("the server runs", v.Name, v.Version)
	case errors.As(err, &serr): // the server answered with an error
		fmt.Println("refused:", serr.Type, serr.Condition)
	case errors.Is(err, iq.ErrTimeout): // no answer within 5 s
		fmt.Println("no answer")
	default: // iq.ErrClosed: the session ended
		log.Fatal(err)
	}
}
