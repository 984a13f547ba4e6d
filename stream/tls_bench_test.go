package stream_test

import (
	"context"
	"errors"
	"testing"

	"github.com/xmpp-iq/iq"
)

// BenchmarkEchoTLS is BenchmarkEcho's round trip over TLS on loopback
// TCP, one at a time and with 64 in flight: on a *tls.Conn a write is
// never cut short, and a sender whose context can end hands it to a
// goroutine of its own (see cutIsFatal), which this measures.
func BenchmarkEchoTLS(b *testing.B) {
	pl := iq.NewElement(echoNS, "query").Append(iq.NewElement(echoNS, "v").AppendText("hello"))
	for _, par := range []struct {
		name string
		n    int
	}{{"seq", 0}, {"inflight64", 64}} {
		b.Run(par.name, func(b *testing.B) {
			client, _, server := tlsPair(b, true)
			p := newEchoPair(b, client, server)
			get := func() error {
				res, err := p.client.Caller.Get(context.Background(), "", pl)
				if err == nil && res == nil {
					err = errors.New("no response")
				}
				return err
			}
			b.ReportAllocs()
			b.ResetTimer()
			if par.n == 0 {
				for range b.N {
					if err := get(); err != nil {
						b.Fatal(err)
					}
				}
				return
			}
			b.SetParallelism(par.n)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := get(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
