package iq_test

import "github.com/xmpp-iq/iq"

// benchRegisterInline registers the echo for the inline rows; until
// handlers can run inline it registers it as any other.
func benchRegisterInline(c *iq.Callee, h iq.HandlerFunc) { c.Get(benchNS, "query", h) }
