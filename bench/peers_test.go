package bench

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xmpp-iq/iq"
)

// testPayloads are the payloads the benchmarks echo, every size included.
func testPayloads() []struct {
	name string
	pl   *iq.Element
} {
	return []struct {
		name string
		pl   *iq.Element
	}{
		{"small", smallPayload()},
		{"100B", sizedPayload(100)},
		{"10KB", sizedPayload(10 << 10)},
		{"500KB", sizedPayload(500 << 10)},
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// melliumPayload is the payload of a mellium response (every token but the
// <iq/>'s own), decoded by iq to compare with what was sent.
func melliumPayload(t *testing.T, toks []xml.Token) *iq.Element {
	t.Helper()
	require.GreaterOrEqual(t, len(toks), 3, "response tokens")
	start, ok := toks[0].(xml.StartElement)
	require.True(t, ok, "first token %T", toks[0])
	require.Equal(t, "iq", start.Name.Local)
	for _, a := range start.Attr {
		if a.Name.Local == "type" {
			require.Equal(t, "result", a.Value)
		}
	}
	toks = toks[1:]
	// mellium's response reader stops before the </iq>; should it not:
	if end, ok := toks[len(toks)-1].(xml.EndElement); ok && end.Name.Local == "iq" {
		toks = toks[:len(toks)-1]
	}
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	for _, tok := range toks {
		// The decoder reports each xmlns both in the name and as an
		// attribute; the name is enough for the encoder.
		if se, ok := tok.(xml.StartElement); ok {
			attrs := se.Attr[:0:0]
			for _, a := range se.Attr {
				if a.Name.Space != "xmlns" && (a.Name.Space != "" || a.Name.Local != "xmlns") {
					attrs = append(attrs, a)
				}
			}
			se.Attr = attrs
			tok = se
		}
		require.NoError(t, enc.EncodeToken(tok))
	}
	require.NoError(t, enc.Flush())
	el, err := iq.ParseElement(buf.Bytes())
	require.NoError(t, err, "payload of %d bytes", buf.Len())
	return el
}

// iqPeers are the ways iq's Caller and Callee are joined in the RoundTrip
// rows: on bare streams, through the mellium adapter, under a Pool (of 2
// here: TestPoolPeerSpreads checks the spreading).
var iqPeers = []struct {
	name string
	peer func(t *testing.T, tr transport) *iqPeer
}{
	{"iq", func(t *testing.T, tr transport) *iqPeer {
		c, s := tr.conns(t)
		return newIQPeer(t, c, s, nil)
	}},
	{"iq-mellium", func(t *testing.T, tr transport) *iqPeer {
		c, s := tr.conns(t)
		return newIQMelliumPeer(t, c, s)
	}},
	{"iq-pool", func(t *testing.T, tr transport) *iqPeer { return newPoolPeer(t, tr, 2) }},
}

// TestEchoPeers checks that every peer the RoundTrip and Size groups
// measure answers with exactly the payload it was sent, one at a time and
// eight at once, and that the benchmarks' own check passes.
func TestEchoPeers(t *testing.T) {
	for _, tr := range transports {
		for _, tc := range testPayloads() {
			raw := mustXML(tc.pl)
			toks := elementTokens(tc.pl)
			for _, pc := range iqPeers {
				t.Run(pc.name+"/"+tr.name+"/"+tc.name, func(t *testing.T) {
					p := pc.peer(t, tr)
					ctx := testContext(t)
					got, err := p.echo(ctx, tc.pl)
					require.NoError(t, err)
					require.True(t, tc.pl.Equal(got), "echo differs: got %d bytes, sent %d", len(mustXML(got)), len(raw))
					require.NoError(t, runN(ctx, 16, 8, p.echoOp(tc.pl)))
				})
			}
			t.Run("mellium/"+tr.name+"/"+tc.name, func(t *testing.T) {
				c, s := tr.conns(t)
				p := newMelliumPeer(t, c, s)
				ctx := testContext(t)
				got, err := p.echo(ctx, toks)
				require.NoError(t, err)
				require.True(t, tc.pl.Equal(melliumPayload(t, got)), "echo differs")
				require.NoError(t, runN(ctx, 16, 8, p.echoOp(toks)))
			})
			t.Run("netrpc/"+tr.name+"/"+tc.name, func(t *testing.T) {
				c, s := tr.conns(t)
				p := newNetrpcPeer(t, c, s)
				ctx := testContext(t)
				got, err := p.echo(ctx, raw)
				require.NoError(t, err)
				require.Equal(t, raw, got)
				require.NoError(t, runN(ctx, 16, 8, p.echoOp(raw)))
			})
		}
		t.Run("floor/"+tr.name, func(t *testing.T) {
			c, s := tr.conns(t)
			p := newFloorPeer(t, c, s)
			ctx := testContext(t)
			for i, v := range []string{"hello", "a <b> & 'c'"} {
				got, err := p.echo(ctx, v) // echo checks the id came back
				require.NoError(t, err)
				assert.Equal(t, v, got.v)
				assert.Equal(t, strconv.Itoa(i+1), got.id)
			}
			require.NoError(t, runN(ctx, 4, 1, p.echoOp()))
		})
	}
}

// TestChecksCatchWrongAnswers checks that the benchmarks' own checks fail
// on an answer that is not the echo.
func TestChecksCatchWrongAnswers(t *testing.T) {
	wrong := iq.NewElement(wrongNS, "query").Append(iq.NewElement(wrongNS, "v").AppendText("hello"))
	tests := []struct {
		name string
		op   func(t *testing.T, tr transport) func(context.Context) error
	}{
		{"iq", func(t *testing.T, tr transport) func(context.Context) error {
			c, s := tr.conns(t)
			return newIQPeer(t, c, s, nil).echoOp(wrong)
		}},
		{"mellium", func(t *testing.T, tr transport) func(context.Context) error {
			c, s := tr.conns(t)
			return newMelliumPeer(t, c, s).echoOp(elementTokens(wrong))
		}},
		{"netrpc", func(t *testing.T, tr transport) func(context.Context) error {
			c, s := tr.conns(t)
			p := newNetrpcPeer(t, c, s)
			p.method = "Short.Echo"
			return p.echoOp(mustXML(wrong))
		}},
	}
	for _, tr := range transports {
		for _, tc := range tests {
			t.Run(tc.name+"/"+tr.name, func(t *testing.T) {
				err := tc.op(t, tr)(testContext(t))
				require.Error(t, err)
				assert.Contains(t, err.Error(), "got")
			})
		}
	}
}

// TestTypedPeers checks that both typed peers send the struct back as it
// was, every field decoded, one at a time and eight at once.
func TestTypedPeers(t *testing.T) {
	tests := []struct {
		name  string
		typed func(t *testing.T, tr transport) (func(context.Context, *forecast) (forecast, error), func(context.Context) error)
	}{
		{"iq", func(t *testing.T, tr transport) (func(context.Context, *forecast) (forecast, error), func(context.Context) error) {
			c, s := tr.conns(t)
			p := newIQPeer(t, c, s, nil)
			return p.typed, p.typedOp()
		}},
		{"mellium", func(t *testing.T, tr transport) (func(context.Context, *forecast) (forecast, error), func(context.Context) error) {
			c, s := tr.conns(t)
			p := newMelliumPeer(t, c, s)
			return p.typed, p.typedOp()
		}},
	}
	for _, tr := range transports {
		for _, tc := range tests {
			t.Run(tc.name+"/"+tr.name, func(t *testing.T) {
				typed, op := tc.typed(t, tr)
				ctx := testContext(t)
				want := sampleForecast()
				got, err := typed(ctx, &want)
				require.NoError(t, err)
				assert.Equal(t, want, got)
				other := forecast{City: "Mantua", Sky: "rain", XMLName: want.XMLName}
				got, err = typed(ctx, &other)
				require.NoError(t, err)
				assert.Equal(t, other.City, got.City)
				assert.Empty(t, got.Temps)
				assert.False(t, sameForecast(&got, &want), "the check tells forecasts apart")
				require.NoError(t, runN(ctx, 16, 8, op))
			})
		}
	}
}

// TestSizedPayload checks that the Size group's payloads are as long as
// their names say, and no more than one item longer.
func TestSizedPayload(t *testing.T) {
	// An item alone, its xmlns included: longer than one inside the query.
	item := len(mustXML(iq.NewElement(dataNS, "item", "id", "000001", "kind", "a&b").
		AppendText("some <text> & more ")))
	for _, tc := range []struct {
		name string
		size int
	}{{"100B", 100}, {"1KB", 1 << 10}, {"10KB", 10 << 10}, {"64KB", 64 << 10}, {"500KB", 500 << 10}} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(mustXML(sizedPayload(tc.size)))
			assert.GreaterOrEqual(t, n, tc.size)
			assert.Less(t, n, tc.size+item)
		})
	}
}

// TestRunN checks that runN makes exactly the calls asked for, from as many
// goroutines, and returns the first error.
func TestRunN(t *testing.T) {
	for _, tc := range []struct {
		name     string
		total, n int
	}{{"seq", 10, 1}, {"8 in flight", 1000, 8}, {"more goroutines than calls", 3, 64}} {
		t.Run(tc.name, func(t *testing.T) {
			var calls, inside, most atomic.Int64
			err := runN(context.Background(), tc.total, tc.n, func(context.Context) error {
				calls.Add(1)
				cur := inside.Add(1)
				for m := most.Load(); cur > m && !most.CompareAndSwap(m, cur); m = most.Load() {
				}
				time.Sleep(time.Millisecond)
				inside.Add(-1)
				return nil
			})
			require.NoError(t, err)
			assert.Equal(t, int64(tc.total), calls.Load())
			assert.LessOrEqual(t, most.Load(), int64(min(tc.n, tc.total)))
		})
	}
	t.Run("error", func(t *testing.T) {
		boom := errors.New("boom")
		var calls atomic.Int64
		err := runN(context.Background(), 100, 4, func(context.Context) error {
			if calls.Add(1) == 5 {
				return boom
			}
			return nil
		})
		require.ErrorIs(t, err, boom)
	})
}
