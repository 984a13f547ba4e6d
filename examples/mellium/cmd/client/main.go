// Command client logs in to an XMPP server with mellium.im/xmpp and makes
// IQ requests through github.com/xmpp-iq/iq: it asks the server for its
// software version (XEP-0092) and pings a component (XEP-0199).
//
// It logs in without TLS, with SASL PLAIN, and so only to a server on the
// loopback interface:
//
//	client -addr 127.0.0.1:5222 -jid alice@localhost -password alicepass \
//		-component echo.localhost
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/xmpp-iq/iq"
	melliumiq "github.com/xmpp-iq/iq/adapter/mellium"
	"mellium.im/xmpp/jid"
)

const (
	nsVersion = "jabber:iq:version"
	nsPing    = "urn:xmpp:ping"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5222", "host:port of the server's c2s port (loopback only)")
	account := flag.String("jid", "", "account JID, e.g. alice@localhost (the server picks the resource)")
	password := flag.String("password", "", "account password")
	component := flag.String("component", "", "JID of a component to ping (none: no ping)")
	timeout := flag.Duration("timeout", 10*time.Second, "deadline of each request")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("client: ")
	if *account == "" || *password == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*addr, *account, *password, *component, *timeout); err != nil {
		log.Fatal(err)
	}
}

func run(addr, account, password, component string, timeout time.Duration) error {
	origin, err := jid.Parse(account)
	if err != nil {
		return fmt.Errorf("-jid %q: %w", account, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	session, err := melliumiq.DialPlaintext(ctx, addr, origin, password)
	cancel()
	if err != nil {
		return err
	}
	defer session.Conn().Close()
	fmt.Printf("logged in as %s\n", session.LocalAddr())

	a := melliumiq.New(session)
	serveCtx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(serveCtx) }()
	defer func() {
		stop()
		if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
			log.Printf("serve: %v", err)
		}
	}()

	// The server's software version.
	domain := session.LocalAddr().Domain().String()
	ctx, cancel = context.WithTimeout(context.Background(), timeout)
	res, err := a.Endpoint.Caller.Get(ctx, domain, iq.NewElement(nsVersion, "query"))
	cancel()
	switch {
	case err != nil:
		fmt.Printf("version of %s: %s\n", domain, outcome(err))
	case res == nil:
		fmt.Printf("version of %s: empty result\n", domain)
	default:
		text := func(name string) string {
			if c := res.Child(nsVersion, name); c != nil {
				return c.Text()
			}
			return "?"
		}
		fmt.Printf("version of %s: %s %s\n", domain, text("name"), text("version"))
	}

	if component != "" {
		ctx, cancel = context.WithTimeout(context.Background(), timeout)
		start := time.Now()
		_, err := a.Endpoint.Caller.Get(ctx, component, iq.NewElement(nsPing, "ping"))
		cancel()
		if err == nil {
			fmt.Printf("ping %s: result in %v\n", component, time.Since(start).Round(time.Millisecond))
		} else {
			fmt.Printf("ping %s: %s\n", component, outcome(err))
		}
	}
	return nil
}

// outcome describes a failed request: a stanza error's type and condition,
// or why no response came.
func outcome(err error) string {
	var serr *iq.StanzaError
	switch {
	case errors.As(err, &serr):
		s := fmt.Sprintf("error %s/%s", serr.Type, serr.Condition)
		if serr.Text != "" {
			s += fmt.Sprintf(" (%q)", serr.Text)
		}
		return s
	case errors.Is(err, iq.ErrTimeout):
		return "no response (timeout)"
	default:
		return "failed: " + err.Error()
	}
}
