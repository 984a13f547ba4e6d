package bench

import (
	"context"
	"fmt"
	"net"
	"testing"
)

// BenchmarkSize is the echo of payloads of 100 B, 10 KB (and, with
// -bench.full, 500 KB): a query of items with attributes and escaped
// text, one request at a time. MB/s counts the payload both ways;
// net/rpc carries as many bytes with gob. iq-release is iq with the
// memory of the trees read reused (iq.WithTreeReuse on both ends,
// IQ.Release on each response). iq-typed and iq-typed-release are the
// same echo with the response decoded into a struct by iq.GetAs, which
// with tree reuse releases it. iq-mellium is iq through melliumiq on two
// mellium sessions (see newIQMelliumPeer).
func BenchmarkSize(b *testing.B) {
	for _, size := range payloadSizes() {
		pl := sizedPayload(size.bytes)
		toks := elementTokens(pl)
		raw := mustXML(pl)
		peers := []struct {
			name string
			op   func(b *testing.B, c, s net.Conn) func(context.Context) error
		}{
			{"iq", func(b *testing.B, c, s net.Conn) func(context.Context) error {
				return newIQPeer(b, c, s, nil).echoOp(pl)
			}},
			{"iq-release", func(b *testing.B, c, s net.Conn) func(context.Context) error {
				return newIQReleasePeer(b, c, s).echoReleaseOp(pl)
			}},
			{"iq-typed", func(b *testing.B, c, s net.Conn) func(context.Context) error {
				return newIQPeer(b, c, s, nil).typedEchoOp(pl)
			}},
			{"iq-typed-release", func(b *testing.B, c, s net.Conn) func(context.Context) error {
				return newIQReleasePeer(b, c, s).typedEchoOp(pl)
			}},
			{"mellium", func(b *testing.B, c, s net.Conn) func(context.Context) error {
				return newMelliumPeer(b, c, s).echoOp(toks)
			}},
			{"iq-mellium", func(b *testing.B, c, s net.Conn) func(context.Context) error {
				return newIQMelliumPeer(b, c, s).echoOp(pl)
			}},
			{"netrpc", func(b *testing.B, c, s net.Conn) func(context.Context) error {
				return newNetrpcPeer(b, c, s).echoOp(raw)
			}},
		}
		for _, tr := range transports {
			for _, p := range peers {
				b.Run(fmt.Sprintf("%s/%s/size=%s", p.name, tr.name, size.name), func(b *testing.B) {
					c, s := tr.conns(b)
					op := p.op(b, c, s)
					b.SetBytes(2 * int64(len(raw)))
					drive(b, 1, op)
				})
			}
		}
	}
}
