package melliumiq

import (
	"context"
	"fmt"
	"io"
	"net"

	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

// DialPlaintext connects to the c2s port at addr (host:port) and has mellium
// negotiate a client session for origin without TLS: SASL PLAIN with
// password, then resource binding. The server always picks the resource:
// mellium v0.23.0 sends an empty <resource/> whatever origin's resourcepart
// (its bindPayload writes the JID where the resource belongs), so a
// resource in origin is ignored; the bound address is s.LocalAddr().
// It is for test servers on the loopback interface only,
// and refuses any other address: the password crosses the connection in
// the clear.
//
// mellium's SASL feature requires a secure stream and its negotiator tries
// StartTLS whenever that feature is listed, so the stream is declared
// secure from the start (xmpp.Secure) and StartTLS is not listed.
//
// The caller closes the session (Close) and then its connection
// (s.Conn().Close()) when done.
func DialPlaintext(ctx context.Context, addr string, origin jid.JID, password string) (*xmpp.Session, error) {
	return dialPlaintext(ctx, addr, origin, password, nil, nil)
}

// dialPlaintext is DialPlaintext with copies of what the session reads and
// writes sent to teeIn and teeOut, when not nil.
func dialPlaintext(ctx context.Context, addr string, origin jid.JID, password string, teeIn, teeOut io.Writer) (*xmpp.Session, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("melliumiq: address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("melliumiq: refusing plaintext login to %s: not a loopback address", addr)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	features := []xmpp.StreamFeature{
		xmpp.SASL("", password, sasl.Plain),
		xmpp.BindResource(),
	}
	// The caller's ctx ends when it likes after DialPlaintext returns:
	// mellium, which watches it from a goroutine that outlives the call,
	// must not see that (see detach).
	deadline, own := ctx.Deadline()
	nctx, stop := detach(ctx, deadline, own)
	defer stop()
	s, err := xmpp.NewSession(nctx, origin.Domain(), origin, conn, xmpp.Secure,
		xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: features, TeeIn: teeIn, TeeOut: teeOut}
		}))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("melliumiq: log in as %s: %w", origin, err)
	}
	return s, nil
}
