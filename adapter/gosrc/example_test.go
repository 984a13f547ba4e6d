package gosrciq_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"gosrc.io/xmpp"

	"github.com/xmpp-iq/iq"
	gosrciq "github.com/xmpp-iq/iq/adapter/gosrc"
	"github.com/xmpp-iq/iq/version"
)

// A complete client: log in with gosrc.io/xmpp, answer a custom get, ask
// the server for its software version, and tell a result from a stanza
// error and a timeout.
func Example() {
	cfg := &xmpp.Config{
		TransportConfiguration: xmpp.TransportConfiguration{Address: "example.com:5222"},
		Jid:                    "juliet@example.com", Credential: xmpp.Password(os.Getenv("XMPP_PASSWORD")),
	}
	// Every <iq> goes to the Endpoint; the router may carry routes for
	// messages and presence. The Endpoint closes when the client fails.
	a, err := gosrciq.Connect(cfg, xmpp.NewRouter(), nil, func(e *iq.Endpoint) {
		e.Callee.Get("urn:example:echo", "echo", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
			return iq.NewElement("urn:example:echo", "echo").AppendText(req.Payload.Text()), nil
		})
	})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()

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
