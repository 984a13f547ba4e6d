// Package ping implements XEP-0199 XMPP Ping over package iq: a handler
// that answers pings, and Ping, which sends one.
package ping

import (
	"context"
	"encoding/xml"
	"errors"

	"github.com/xmpp-iq/iq"
)

// NS is the XEP-0199 namespace.
const NS = "urn:xmpp:ping"

// Request is the <ping xmlns='urn:xmpp:ping'/> payload of a ping.
type Request struct {
	XMLName xml.Name `xml:"urn:xmpp:ping ping"`
}

// Register registers on c a handler that answers every ping with an empty
// result, as XEP-0199 §4.2 says. mw, if any, wrap it alone (see
// iq.HandleGet). It panics if c already answers pings.
func Register(c *iq.Callee, mw ...func(iq.Handler) iq.Handler) {
	iq.HandleGet(c, Handle, mw...)
}

// Handle answers a ping: an empty result. It is what Register registers.
func Handle(context.Context, *Request) (*Request, error) { return nil, nil }

// Ping pings the entity at to (the local server when to is empty) through
// c and returns nil if it answered, as iq.Caller.Get does for any request.
// Since XEP-0199 §4.2 lets an entity that does not support ping answer
// service-unavailable or feature-not-implemented, and such an answer still
// shows it is there, those two errors count as an answer too (beware that
// a server answers service-unavailable itself for a full JID with no
// session behind it, RFC 6120 §10.5.3). Any other error is returned: a
// *iq.StanzaError, iq.ErrTimeout, iq.ErrClosed…
//
// Ping is safe for concurrent use, as the Caller is.
func Ping(ctx context.Context, c *iq.Caller, to string) error {
	_, err := iq.GetAs[iq.Element](ctx, c, to, Request{})
	var serr *iq.StanzaError
	if errors.As(err, &serr) &&
		(serr.Condition == iq.ServiceUnavailable || serr.Condition == iq.FeatureNotImplemented) {
		return nil
	}
	return err
}
