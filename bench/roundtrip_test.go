package bench

import (
	"fmt"
	"testing"
)

// BenchmarkRoundTrip is the echo of a small element
// (<query xmlns='urn:example:echo'><v>hello</v></query>) by each peer,
// over each transport, with 1, 8, 64 (and, with -bench.full, 512)
// requests outstanding: ns/op is wall time per round trip, so with more
// than one in flight it is the inverse of throughput. net/rpc carries the
// same number of bytes with gob; the floor is encoding/xml alone, one at a
// time.
func BenchmarkRoundTrip(b *testing.B) {
	pl := smallPayload()
	toks := elementTokens(pl)
	raw := mustXML(pl)
	for _, tr := range transports {
		for _, n := range inFlightCounts() {
			b.Run(fmt.Sprintf("iq/%s/inflight=%d", tr.name, n), func(b *testing.B) {
				c, s := tr.conns(b)
				drive(b, n, newIQPeer(b, c, s, nil).echoOp(pl))
			})
			b.Run(fmt.Sprintf("mellium/%s/inflight=%d", tr.name, n), func(b *testing.B) {
				c, s := tr.conns(b)
				drive(b, n, newMelliumPeer(b, c, s).echoOp(toks))
			})
			b.Run(fmt.Sprintf("iq-mellium/%s/inflight=%d", tr.name, n), func(b *testing.B) {
				c, s := tr.conns(b)
				drive(b, n, newIQMelliumPeer(b, c, s).echoOp(pl))
			})
			for _, conns := range []int{1, 4} {
				b.Run(fmt.Sprintf("iq-pool%d/%s/inflight=%d", conns, tr.name, n), func(b *testing.B) {
					drive(b, n, newPoolPeer(b, tr, conns).echoOp(pl))
				})
			}
			b.Run(fmt.Sprintf("netrpc/%s/inflight=%d", tr.name, n), func(b *testing.B) {
				c, s := tr.conns(b)
				drive(b, n, newNetrpcPeer(b, c, s).echoOp(raw))
			})
		}
		b.Run(fmt.Sprintf("floor/%s/inflight=1", tr.name), func(b *testing.B) {
			c, s := tr.conns(b)
			drive(b, 1, newFloorPeer(b, c, s).echoOp())
		})
	}
}
