package bench

import (
	"fmt"
	"testing"
)

// BenchmarkTyped is a struct (forecast) sent, decoded by the responder,
// sent back and decoded again: iq with GetAs and a HandleGet handler,
// mellium with xml.Decoder.DecodeElement on both ends from its token
// streams (UnmarshalIQElement on the client) and the struct encoded by a
// hand-written TokenReader, as mellium's own payload types are.
func BenchmarkTyped(b *testing.B) {
	for _, tr := range transports {
		for _, n := range []int{1, 64} {
			b.Run(fmt.Sprintf("iq/%s/inflight=%d", tr.name, n), func(b *testing.B) {
				c, s := tr.conns(b)
				drive(b, n, newIQPeer(b, c, s, nil).typedOp())
			})
			b.Run(fmt.Sprintf("mellium/%s/inflight=%d", tr.name, n), func(b *testing.B) {
				c, s := tr.conns(b)
				drive(b, n, newMelliumPeer(b, c, s).typedOp())
			})
		}
	}
}
