package melliumiq_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/xmpp-iq/iq"
	melliumiq "github.com/xmpp-iq/iq/adapter/mellium"
	"github.com/xmpp-iq/iq/version"
	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

// A complete client: log in with mellium, answer a custom get, ask the
// server for its software version, and tell a result from a stanza error
// and a timeout.
func Example() {
	ctx := context.Background()
	session, err := xmpp.DialClientSession(ctx, jid.MustParse("juliet@example.com"),
		xmpp.StartTLS(&tls.Config{ServerName: "example.com", MinVersion: tls.VersionTLS12}),
		xmpp.SASL("", os.Getenv("XMPP_PASSWORD"), sasl.ScramSha256Plus, sasl.ScramSha256),
		xmpp.BindResource())
	if err != nil {
		log.Fatal(err)
	}
	defer session.Conn().Close()

	a := melliumiq.New(session) // local JID: the bound juliet@example.com/…
	a.Endpoint.Callee.Get("urn:example:echo", "echo", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		return iq.NewElement("urn:example:echo", "echo").AppendText(req.Payload.Text()), nil
	})
	go a.Serve(ctx) // every <iq> to the Endpoint; closes it when the session ends

	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
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
