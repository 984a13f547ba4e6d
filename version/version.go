// Package version implements XEP-0092 Software Version over package iq: a
// handler that tells the software's name, version and, optionally,
// operating system, and Get, which asks another entity for its own.
package version

import (
	"context"
	"encoding/xml"

	"github.com/xmpp-iq/iq"
)

// NS is the XEP-0092 namespace.
const NS = "jabber:iq:version"

// Query is the payload of a software version request (empty) and of its
// result.
type Query struct {
	XMLName xml.Name `xml:"jabber:iq:version query"`
	Name    string   `xml:"name,omitempty"`
	Version string   `xml:"version,omitempty"`
	OS      string   `xml:"os,omitempty"`
}

// Register registers on c a handler that answers every software version
// request with v (its XMLName need not be set). mw, if any, wrap it alone
// (see iq.HandleGet): XEP-0092 §3 lets an entity restrict who may know
// its operating system, or its version at all, with access control. It
// panics if c already answers such requests.
func Register(c *iq.Callee, v Query, mw ...func(iq.Handler) iq.Handler) {
	v.XMLName = xml.Name{}
	iq.HandleGet(c, func(context.Context, *Query) (*Query, error) {
		reply := v
		return &reply, nil
	}, mw...)
}

// Get asks the entity at to for its software version through c. Errors are
// iq.GetAs's; an empty result gives an empty Query. It is safe for
// concurrent use, as the Caller is.
func Get(ctx context.Context, c *iq.Caller, to string) (Query, error) {
	return iq.GetAs[Query](ctx, c, to, Query{})
}
