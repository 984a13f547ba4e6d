// Command component is an XMPP component (XEP-0114) built on iq. It
// answers XEP-0199 ping, XEP-0092 software version, XEP-0030 disco#info
// (listing the namespaces it handles, from its routing table) and a custom
// echo namespace, urn:example:echo, with typed handlers.
//
// Echo answers only the component itself and the users of its server: the
// parent domain of -domain (localhost for echo.localhost); others get
// auth/forbidden. Every request is logged, and every handler has ten
// seconds to answer.
//
//	go run ./examples/component -addr 127.0.0.1:5347 -domain echo.localhost -secret s3cret
package main

import (
	"context"
	"encoding/xml"
	"errors"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/component"
	"github.com/xmpp-iq/iq/disco"
	"github.com/xmpp-iq/iq/ping"
	"github.com/xmpp-iq/iq/version"
)

// Echo is the payload of urn:example:echo: its attributes and content are
// sent back as they came.
type Echo struct {
	XMLName xml.Name   `xml:"urn:example:echo echo"`
	Attrs   []xml.Attr `xml:",any,attr"`
	Inner   string     `xml:",innerxml"`
}

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
	register(ep.Callee, *domain, logger)
	logger.Info("component connected", "domain", *domain, "addr", *addr)
	if err := conn.Serve(ctx, ep, nil); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

// register installs the component's middleware and handlers on c.
func register(c *iq.Callee, domain string, logger *slog.Logger) {
	c.Use(iq.Logging(logger), iq.Timeout(10*time.Second))

	ping.Register(c)
	version.Register(c, version.Query{Name: "iq example component", Version: "0.1.0", OS: runtime.GOOS})
	iq.HandleGet(c, func(ctx context.Context, req *Echo) (*Echo, error) {
		return req, nil
	}, iq.Allow(iq.AnyOf(iq.OwnAccount(domain), iq.Domains(serverDomain(domain)))))

	// Its features are the namespaces above, and disco#info's own.
	disco.Register(c, disco.Identity{Category: "component", Type: "generic", Name: "iq example"})
}

// serverDomain returns the domain of the server a component at domain
// belongs to: its parent, or domain itself when it has none.
func serverDomain(domain string) string {
	if _, parent, ok := strings.Cut(domain, "."); ok && parent != "" {
		return parent
	}
	return domain
}
