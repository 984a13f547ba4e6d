package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xmpp-iq/iq"
	melliumiq "github.com/xmpp-iq/iq/adapter/mellium"
	"github.com/xmpp-iq/iq/component"
	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

// env is what run needs from the process: its variables, streams and
// terminal, so that tests can run it in-process.
type env struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
	// prompt reads a secret from the terminal; nil when stdin is not one.
	prompt func(label string) (string, error)
}

// run is the whole program but os.Exit: it returns the exit status.
func run(ctx context.Context, args []string, e env) int {
	o, err := parseArgs(args, e.stderr)
	if errors.Is(err, errHelp) {
		return exitResult
	}
	if err != nil {
		fmt.Fprintln(e.stderr, "iq:", err)
		return exitFailure
	}
	payload, err := readPayload(o, e.stdin)
	if err != nil {
		fmt.Fprintln(e.stderr, "iq:", err)
		return exitFailure
	}
	resp, err := request(ctx, o, payload, e)
	if resp != nil {
		if ferr := formatReply(e.stdout, resp, o.json); ferr != nil {
			fmt.Fprintln(e.stderr, "iq: print reply:", ferr)
			return exitFailure
		}
	}
	if err != nil {
		// The library's errors carry their own "iq: " prefix already.
		fmt.Fprintln(e.stderr, "iq:", strings.TrimPrefix(err.Error(), "iq: "))
	}
	return exitCode(err)
}

// request connects, sends the one request and returns the reply: the
// result and nil, or the error IQ and its *iq.StanzaError, or nil and why.
func request(ctx context.Context, o *options, payload *iq.Element, e env) (*iq.IQ, error) {
	var console *xmlConsole
	if o.console {
		console = &xmlConsole{w: e.stderr}
	}
	ep, serve, closeConn, err := connect(ctx, o, e, console)
	if err != nil {
		return nil, err
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(sctx) }()
	defer func() {
		stop()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
		}
		closeConn()
	}()
	rctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	return ep.Caller.Request(rctx, &iq.IQ{Type: o.typ, To: o.to, Payload: payload})
}

// connect logs in (client) or handshakes (component) and returns the
// Endpoint, the function that reads the stream into it, and the one that
// closes the connection.
func connect(ctx context.Context, o *options, e env, console *xmlConsole) (*iq.Endpoint, func(context.Context) error, func(), error) {
	lctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if o.comp != "" {
		secret := e.getenv(o.secEnv)
		if secret == "" {
			return nil, nil, nil, fmt.Errorf("component secret: $%s is empty", o.secEnv)
		}
		var d net.Dialer
		nc, err := d.DialContext(lctx, "tcp", o.compAddr)
		if err != nil {
			return nil, nil, nil, err
		}
		conn, err := component.Connect(lctx, console.wrap(nc), o.comp, secret)
		if err != nil {
			nc.Close()
			return nil, nil, nil, err
		}
		console.start()
		ep := iq.NewEndpoint(conn, iq.WithLocalJID(o.comp))
		serve := func(ctx context.Context) error { return conn.Serve(ctx, ep, nil) }
		return ep, serve, func() { conn.Close(); nc.Close() }, nil
	}
	password := e.getenv(o.passEnv)
	if password == "" {
		if e.prompt == nil {
			return nil, nil, nil, fmt.Errorf("password: $%s is empty and stdin is not a terminal", o.passEnv)
		}
		p, err := e.prompt(fmt.Sprintf("password for %s: ", o.jid))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("password: %w", err)
		}
		password = p
	}
	s, err := dialClient(lctx, o.addr, o.jid, password, console)
	if err != nil {
		return nil, nil, nil, err
	}
	console.start()
	a := melliumiq.New(s)
	return a.Endpoint, a.Serve, func() { s.Conn().Close() }, nil
}

// dialClient logs in as the adapter's DialPlaintext does (loopback only,
// SASL PLAIN without TLS, resource bound by the server), on a connection
// the XML console can watch.
func dialClient(ctx context.Context, addr, account, password string, console *xmlConsole) (*xmpp.Session, error) {
	origin, err := jid.Parse(account)
	if err != nil {
		return nil, fmt.Errorf("--jid: %w", err)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("refusing a plaintext login to %s: not a loopback address (TLS is not supported yet)", addr)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// mellium watches the session's context after NewSession returns (see
	// the adapter's package documentation): give it none that ends, and
	// bound the login with a deadline on the connection instead.
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	features := []xmpp.StreamFeature{xmpp.SASL("", password, sasl.Plain), xmpp.BindResource()}
	s, err := xmpp.NewSession(context.Background(), origin.Domain(), origin, console.wrap(nc), xmpp.Secure,
		xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: features}
		}))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("log in as %s: %w", origin, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return s, nil
}

// xmlConsole copies what crosses the connection to w once started: after
// the login, so that neither the password (SASL PLAIN) nor the handshake
// is shown.
type xmlConsole struct {
	w  io.Writer
	on atomic.Bool
	mu sync.Mutex
}

func (c *xmlConsole) start() {
	if c != nil {
		c.on.Store(true)
	}
}

func (c *xmlConsole) print(dir string, p []byte) {
	if c == nil || !c.on.Load() || len(p) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.w, "%s %s\n", dir, p)
}

// wrap returns nc, watched by c when c is not nil.
func (c *xmlConsole) wrap(nc net.Conn) net.Conn {
	if c == nil {
		return nc
	}
	return &consoleConn{Conn: nc, c: c}
}

type consoleConn struct {
	net.Conn
	c *xmlConsole
}

func (cc *consoleConn) Read(p []byte) (int, error) {
	n, err := cc.Conn.Read(p)
	cc.c.print("<<", p[:n])
	return n, err
}

func (cc *consoleConn) Write(p []byte) (int, error) {
	cc.c.print(">>", p)
	return cc.Conn.Write(p)
}

// errHelp is the flag package's: -h asked for the usage.
var errHelp = flagErrHelp

func main() {
	e := env{getenv: os.Getenv, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}
	if isTerminal(os.Stdin) {
		e.prompt = func(label string) (string, error) { return promptSecret(os.Stdin, os.Stderr, label) }
	}
	// Ctrl-C ends the wait like any failure (status 1), closing the
	// stream cleanly first.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], e)
	stop()
	os.Exit(code)
}
