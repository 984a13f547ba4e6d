package bench

import (
	"fmt"
	"testing"
)

// BenchmarkSize is the echo of payloads of 100 B, 10 KB (and, with
// -bench.full, 500 KB): a query of items with attributes and escaped
// text, one request at a time. MB/s counts the payload both ways;
// net/rpc carries as many bytes with gob. iq-release is iq with the
// memory of the trees read reused (iq.WithTreeReuse on both ends,
// IQ.Release on each response). iq-typed and iq-typed-release are the
// same echo with the response decoded into a struct by iq.GetAs, which
// with tree reuse releases it.
func BenchmarkSize(b *testing.B) {
	for _, size := range payloadSizes() {
		pl := sizedPayload(size.bytes)
		toks := elementTokens(pl)
		raw := mustXML(pl)
		for _, tr := range transports {
			b.Run(fmt.Sprintf("iq/%s/size=%s", tr.name, size.name), func(b *testing.B) {
				c, s := tr.conns(b)
				op := newIQPeer(b, c, s, nil).echoOp(pl)
				b.SetBytes(2 * int64(len(raw)))
				drive(b, 1, op)
			})
			b.Run(fmt.Sprintf("iq-release/%s/size=%s", tr.name, size.name), func(b *testing.B) {
				c, s := tr.conns(b)
				op := newIQReleasePeer(b, c, s).echoReleaseOp(pl)
				b.SetBytes(2 * int64(len(raw)))
				drive(b, 1, op)
			})
			b.Run(fmt.Sprintf("iq-typed/%s/size=%s", tr.name, size.name), func(b *testing.B) {
				c, s := tr.conns(b)
				op := newIQPeer(b, c, s, nil).typedEchoOp(pl)
				b.SetBytes(2 * int64(len(raw)))
				drive(b, 1, op)
			})
			b.Run(fmt.Sprintf("iq-typed-release/%s/size=%s", tr.name, size.name), func(b *testing.B) {
				c, s := tr.conns(b)
				op := newIQReleasePeer(b, c, s).typedEchoOp(pl)
				b.SetBytes(2 * int64(len(raw)))
				drive(b, 1, op)
			})
			b.Run(fmt.Sprintf("mellium/%s/size=%s", tr.name, size.name), func(b *testing.B) {
				c, s := tr.conns(b)
				op := newMelliumPeer(b, c, s).echoOp(toks)
				b.SetBytes(2 * int64(len(raw)))
				drive(b, 1, op)
			})
			b.Run(fmt.Sprintf("netrpc/%s/size=%s", tr.name, size.name), func(b *testing.B) {
				c, s := tr.conns(b)
				op := newNetrpcPeer(b, c, s).echoOp(raw)
				b.SetBytes(2 * int64(len(raw)))
				drive(b, 1, op)
			})
		}
	}
}
