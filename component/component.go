// Package component connects an XMPP component to a server with the
// Jabber Component Protocol (XEP-0114) and returns a stream ready for
// IQs.
//
//	conn, err := component.Dial(ctx, "tcp", "localhost:5347", "echo.localhost", secret)
//	if err != nil { ... }
//	ep := iq.NewEndpoint(conn, iq.WithLocalJID("echo.localhost"))
//	ep.Callee.Get("urn:example:echo", "echo", handler)
//	go conn.Serve(ctx, ep, nil)
//
// A Supervisor keeps a component connected across server restarts, with
// one Endpoint that outlives each stream (see NewSupervisor).
package component

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/internal/errs"
	"github.com/xmpp-iq/iq/stream"
)

// NSAccept is the namespace of a component's stream (XEP-0114).
const NSAccept = iq.NSComponent

// DefaultHandshakeTimeout bounds Dial when its context has no deadline.
const DefaultHandshakeTimeout = 10 * time.Second

// Errors Dial returns for each way a server refuses a component. Each is
// returned wrapped together with the server's *stream.StreamError, so that
// both errors.Is(err, component.ErrNotAuthorized) and errors.As(err,
// &streamErr) work. The error's text names the domain and the stream
// error once: "component: handshake as echo.example refused: wrong
// secret: stream: error not-authorized".
var (
	// ErrNotAuthorized: the server refused the secret.
	ErrNotAuthorized = errors.New("component: handshake refused: " + whyNotAuthorized)
	// ErrConflict: another connection is already serving this component.
	ErrConflict = errors.New("component: handshake refused: " + whyConflict)
	// ErrHostUnknown: the server has no component by this name.
	ErrHostUnknown = errors.New("component: handshake refused: " + whyHostUnknown)
	// ErrHandshake: any other failure of the handshake.
	ErrHandshake = errors.New("component: handshake failed")
)

// Why each refusal happened, in the sentinel and in the error returned.
const (
	whyNotAuthorized = "wrong secret"
	whyConflict      = "already connected"
	whyHostUnknown   = "unknown domain"
)

// refused is the error of a handshake the server refused with se, for the
// reason why, which sentinel stands for.
func refused(sentinel error, domain, why string, se *stream.StreamError) error {
	return errs.New(fmt.Sprintf("component: handshake as %s refused: %s: %v", domain, why, se), sentinel, se)
}

// failed is the error of a handshake that failed otherwise; it wraps
// ErrHandshake and err.
func failed(domain string, err error) error {
	return errs.New(fmt.Sprintf("component: handshake as %s failed: %s", domain, errs.Trim(err, "component: ")), ErrHandshake, err)
}

// Digest returns the XEP-0114 handshake value for a stream id and a
// secret: the lower-case hex SHA-1 of their concatenation.
func Digest(streamID, secret string) string {
	sum := sha1.Sum([]byte(streamID + secret))
	return hex.EncodeToString(sum[:])
}

// Dial connects to the server at addr, opens a jabber:component:accept
// stream for domain, authenticates with secret and returns the stream,
// ready for Serve. ctx bounds the whole handshake (DefaultHandshakeTimeout
// when it has no deadline); when it expires the error matches
// context.DeadlineExceeded. opts configure the returned Conn.
func Dial(ctx context.Context, network, addr, domain, secret string, opts ...stream.Option) (*stream.Conn, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultHandshakeTimeout)
		defer cancel()
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		// The dialer's error names the operation and, mostly, the address.
		if strings.Contains(err.Error(), addr) {
			return nil, fmt.Errorf("component: %w", err)
		}
		return nil, fmt.Errorf("component: %s: %w", addr, err)
	}
	conn, err := Connect(ctx, nc, domain, secret, opts...)
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	return conn, nil
}

// Connect performs the XEP-0114 handshake on an established transport
// (Dial's second half): it opens the stream for domain, sends the digest of
// the server's stream id and secret, and waits for the server's empty
// <handshake/>. On failure the transport is left for the caller to close.
//
// The stream sends from domain (stream.WithLocalAddress, applied before
// opts): every stanza written without a from carries from=domain, which
// XEP-0114 requires of a component and some servers enforce by ending the
// stream (ejabberd), and a from outside domain is refused before it is
// written. A domain that is not a bare domain name fails at once, before
// anything is written, with an error wrapping ErrHandshake.
func Connect(ctx context.Context, rwc io.ReadWriteCloser, domain, secret string, opts ...stream.Option) (*stream.Conn, error) {
	if j, err := iq.ParseJID(domain); err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
		return nil, fmt.Errorf("%w: %q is not a domain name", ErrHandshake, domain)
	}
	opts = append([]stream.Option{stream.WithLocalAddress(domain)}, opts...)
	conn, err := stream.Open(ctx, rwc, stream.Header{NS: NSAccept, To: domain}, opts...)
	if err != nil {
		return nil, failed(domain, err)
	}
	stop := stream.NegotiationDeadline(ctx, rwc)
	defer stop()
	id := conn.PeerHeader().ID
	// An empty id is Prosody's way of refusing an unknown domain: the
	// stream error follows. Sending the handshake anyway reads it.
	hs := iq.NewElement("", "handshake").AppendText(Digest(id, secret))
	if err := conn.SendElement(ctx, hs); err != nil {
		return nil, failed(domain, err)
	}
	el, err := conn.ReadElement()
	if err != nil {
		return nil, handshakeError(ctx, domain, err)
	}
	if el.Name.Local != "handshake" || (el.Name.Space != NSAccept && el.Name.Space != "") {
		return nil, failed(domain, fmt.Errorf("server sent <%s xmlns=%q>, want <handshake/>", el.Name.Local, el.Name.Space))
	}
	return conn, nil
}

func handshakeError(ctx context.Context, domain string, err error) error {
	var se *stream.StreamError
	if errors.As(err, &se) {
		switch se.Condition {
		case stream.NotAuthorized:
			return refused(ErrNotAuthorized, domain, whyNotAuthorized, se)
		case stream.Conflict:
			return refused(ErrConflict, domain, whyConflict, se)
		case stream.HostUnknown:
			return refused(ErrHostUnknown, domain, whyHostUnknown, se)
		}
	}
	if d, ok := ctx.Deadline(); ctx.Err() != nil || (ok && !time.Now().Before(d)) {
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			cerr := ctx.Err()
			if cerr == nil {
				cerr = context.DeadlineExceeded
			}
			return failed(domain, fmt.Errorf("%w (%w)", cerr, err))
		}
	}
	return failed(domain, err)
}
