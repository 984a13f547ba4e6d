// Command component is an XMPP component (XEP-0114) built on iq. It
// answers XEP-0199 ping, XEP-0092 software version, XEP-0030 disco#info
// (listing the namespaces it handles) and a custom echo namespace,
// urn:example:echo.
//
//	go run ./examples/component -addr 127.0.0.1:5347 -domain echo.localhost -secret s3cret
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"syscall"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/component"
)

const (
	nsPing      = "urn:xmpp:ping"
	nsVersion   = "jabber:iq:version"
	nsDiscoInfo = "http://jabber.org/protocol/disco#info"
	nsEcho      = "urn:example:echo"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5347", "the server's component port, host:port")
	domain := flag.String("domain", "echo.localhost", "the component's domain")
	secret := flag.String("secret", "", "the component's shared secret")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	conn, err := component.Dial(ctx, "tcp", *addr, *domain, *secret)
	if err != nil {
		log.Fatal(err)
	}
	ep := iq.NewEndpoint(conn, iq.WithLocalJID(*domain), iq.WithLogger(logger))
	Register(ep.Callee)
	logger.Info("component connected", "domain", *domain, "addr", *addr)
	if err := conn.Serve(ctx, ep, nil); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

// Register installs the component's handlers on c.
func Register(c *iq.Callee) {
	c.Get(nsPing, "ping", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		return nil, nil // XEP-0199: an empty result
	})
	c.Get(nsVersion, "query", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		return iq.NewElement(nsVersion, "query").Append(
			iq.NewElement(nsVersion, "name").AppendText("iq example component"),
			iq.NewElement(nsVersion, "version").AppendText("0.1.0"),
			iq.NewElement(nsVersion, "os").AppendText(runtime.GOOS),
		), nil
	})
	c.Get(nsEcho, "echo", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		return req.Payload, nil
	})
	c.Get(nsDiscoInfo, "query", func(ctx context.Context, req *iq.IQ) (*iq.Element, error) {
		q := iq.NewElement(nsDiscoInfo, "query")
		q.Append(iq.NewElement(nsDiscoInfo, "identity", "category", "component", "type", "generic", "name", "iq example"))
		features := c.Namespaces()
		slices.Sort(features)
		for _, f := range features {
			q.Append(iq.NewElement(nsDiscoInfo, "feature", "var", f))
		}
		return q, nil
	})
}
