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
// It stays connected: a component.Pool of -conns connections, each
// supervised, dials again, with growing waits, whenever a stream ends (a
// server restart, say), and the handlers, registered once, answer on every
// stream. Requests go out round-robin over the live connections, and a
// reply that lands on any of them resolves its request. On a server that
// takes one connection per component (Prosody) the pool degrades to one
// and logs it. A wrong secret or an unknown domain stops it. On SIGTERM or
// Ctrl-C it shuts down gracefully: the requests its handlers are answering
// get their replies before the streams close, within -grace.
//
//	go run ./examples/component -addr 127.0.0.1:5347 -domain echo.localhost -secret s3cret -conns 2
package main

import (
	"context"
	"encoding/xml"
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
	grace := flag.Duration("grace", 15*time.Second, "how long shutting down may take")
	conns := flag.Int("conns", 1, "connections to the server (ejabberd takes several; Prosody one)")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	pool := component.NewPool(*conns, "tcp", *addr, *domain, *secret,
		component.WithNotify(func(e component.Event) {
			switch e.State {
			case component.Connected:
				logger.Info("component connected", "domain", *domain, "addr", *addr, "conn", e.Index)
			case component.Disconnected:
				logger.Warn("component disconnected", "conn", e.Index, "err", e.Err, "retry_in", e.RetryIn)
			case component.Degraded:
				logger.Warn("the server refused another connection: serving on fewer", "conn", e.Index, "err", e.Err)
			}
		}))
	ep := iq.NewEndpoint(pool, iq.WithLocalJID(*domain), iq.WithLogger(logger))
	register(ep.Callee, *domain, logger)

	// The first signal shuts down gracefully; Run's context is not the
	// signal's, so that the stream stays up while the replies go out.
	sig, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-sig.Done()
		logger.Info("shutting down", "grace", *grace)
		ctx, cancel := context.WithTimeout(context.Background(), *grace)
		defer cancel()
		if err := pool.Shutdown(ctx); err != nil {
			logger.Warn("shutdown cut short", "err", err)
		}
	}()
	if err := pool.Run(context.Background(), ep, nil); err != nil {
		log.Fatal(err) // the server refused the component for good
	}
	logger.Info("component stopped")
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
