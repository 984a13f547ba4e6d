package iq_test

import (
	"testing"

	"github.com/xmpp-iq/iq"
)

// benchRegisterInline registers the echo to run on the server's read loop.
func benchRegisterInline(c *iq.Callee, h iq.HandlerFunc) {
	c.HandleInline(iq.TypeGet, benchNS, "query", h)
}

// BenchmarkEndpointRoundTripInline is the Element echo with the handler
// run inline, on the server stream's read loop (HandleInline).
func BenchmarkEndpointRoundTripInline(b *testing.B) { benchRoundTrip(b, true) }
