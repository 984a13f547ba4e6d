package stream_test

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/stream"
)

// echoOfSize returns an echo get with id exactly n bytes long.
func echoOfSize(t *testing.T, id string, n int) string {
	t.Helper()
	head := `<iq type='get' id='` + id + `'><echo xmlns='` + hNS + `'>`
	tail := `</echo></iq>`
	pad := n - len(head) - len(tail)
	require.GreaterOrEqual(t, pad, 0)
	s := head + strings.Repeat("x", pad) + tail
	require.Len(t, s, n)
	return s
}

func TestMaxStanzaSize_Boundary(t *testing.T) {
	const limit = 4096
	for _, tc := range []struct {
		name   string
		before string // sent first, each must pass
		size   int
		pass   bool
	}{
		{name: "well under", size: 100, pass: true},
		{name: "one byte under", size: limit - 1, pass: true},
		{name: "exactly the limit", size: limit, pass: true},
		{name: "one byte over", size: limit + 1},
		{name: "far over", size: 10 * limit},
		{name: "under after keepalives", before: strings.Repeat(" \n", limit/4), size: limit - 1, pass: true},
		{name: "under after a stanza just under", before: "prev", size: limit - 1, pass: true},
		{name: "over after a stanza just under", before: "prev", size: limit + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			r := newRig(t, rigOpts{opts: []stream.Option{stream.WithMaxStanzaSize(limit)}})
			pending := goRequest(r.ep, "p1", iq.NewElement(hNS, "never"))
			r.wire.nextIQ(t)
			switch tc.before {
			case "":
			case "prev":
				r.send(t, echoOfSize(t, "prev", limit-1))
				assert.Equal(t, "prev", r.wire.nextIQ(t).ID)
				r.quiesce(t)
			default:
				r.send(t, tc.before)
			}
			r.quiesce(t)
			stanza := echoOfSize(t, "big", tc.size)
			if tc.pass {
				r.send(t, stanza)
				res := r.wire.nextIQ(t)
				assert.Equal(t, "big", res.ID)
				assert.Equal(t, iq.TypeResult, res.Type)
				assert.Nil(t, r.conn.Err())
				return
			}
			r.sendAsync(stanza) // the Conn stops reading midway
			err := r.served(t)
			assert.ErrorIs(t, err, stream.ErrStanzaTooBig)
			el := r.wire.next(t)
			assert.True(t, isStreamErr(el, stream.PolicyViolation), "wrote %s", el)
			r.wire.waitEOF(t)
			assert.True(t, r.wire.sawEndTag(), "wrote %q", r.wire.tail())
			perr := recvErr(t, pending, waitLong)
			assert.ErrorIs(t, perr, iq.ErrClosed)
			assert.ErrorIs(t, perr, stream.ErrStanzaTooBig)
		})
	}
}

// A negative size panics (TestBugStreamBadOptionValuesSilentlyAccepted).
func TestMaxStanzaSize_DefaultAndZeroKeepDefault(t *testing.T) {
	for _, n := range []int{0} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			leakCheck(t)
			r := newRig(t, rigOpts{opts: []stream.Option{stream.WithMaxStanzaSize(n)}})
			// Well over any small limit, under the default.
			r.send(t, echoOfSize(t, "m", stream.DefaultMaxStanzaSize/2))
			assert.Equal(t, "m", r.wire.nextIQ(t).ID)
			r.sendAsync(echoOfSize(t, "over", stream.DefaultMaxStanzaSize+1))
			assert.ErrorIs(t, r.served(t), stream.ErrStanzaTooBig)
		})
	}
}

// An endless token (an attribute value, a text node) must be cut off at the
// limit: the decoder buffers a whole token, so without the cap it would
// take the peer's whole input into memory.
func TestMaxStanzaSize_EndlessTokenBoundsMemory(t *testing.T) {
	const (
		limit = 256 << 10
		flood = 10 << 20
	)
	for _, tc := range []struct {
		name   string
		prefix string
		fill   byte
	}{
		{"attribute value", `<iq type='get' id='`, 'a'},
		{"text node", `<message><body>`, 'b'},
		{"text at the top level", ``, 'c'},
		{"whitespace at the top level", ``, ' '},
		{"element name", `<x`, 'n'},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			r := newRig(t, rigOpts{opts: []stream.Option{stream.WithMaxStanzaSize(limit)}})
			chunk := []byte(strings.Repeat(string(tc.fill), 32<<10))
			wrote := make(chan int, 1)

			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)

			go func() {
				n := 0
				_ = r.peer.SetWriteDeadline(time.Now().Add(waitLong))
				if _, err := io.WriteString(r.peer, tc.prefix); err != nil {
					wrote <- n
					return
				}
				for n < flood {
					m, err := r.peer.Write(chunk)
					n += m
					if err != nil {
						break
					}
				}
				wrote <- n
			}()
			err := r.served(t)
			n := <-wrote
			runtime.ReadMemStats(&after)

			assert.ErrorIs(t, err, stream.ErrStanzaTooBig)
			assert.Less(t, n, flood, "the Conn stopped reading")
			grew := after.TotalAlloc - before.TotalAlloc
			bound := uint64(4*limit + 1<<20)
			assert.Less(t, grew, bound, "allocated %d bytes for a %d-byte limit", grew, limit)
			if after.HeapAlloc > before.HeapAlloc {
				assert.Less(t, after.HeapAlloc-before.HeapAlloc, bound)
			}
			el := r.wire.next(t)
			assert.True(t, isStreamErr(el, stream.PolicyViolation), "wrote %s", el)
		})
	}
}

func TestMaxStanzaSize_WhitespaceKeepalivesBetweenStanzas(t *testing.T) {
	leakCheck(t)
	const limit = 1024
	r := newRig(t, rigOpts{opts: []stream.Option{stream.WithMaxStanzaSize(limit)}})
	var in strings.Builder
	keepalives := []string{" ", "\n", "\r\n\t ", strings.Repeat(" ", limit-1)}
	gets := 0
	for i := 0; i < 1000; i++ {
		if i%100 == 0 {
			in.WriteString(fmt.Sprintf(`<iq type='get' id='k%d'><echo xmlns='%s'>%d</echo></iq>`, i, hNS, i))
			gets++
		} else {
			in.WriteString(fmt.Sprintf(`<message id='m%d'><body>%s</body></message>`, i, strings.Repeat("z", 100)))
		}
		in.WriteString(keepalives[i%len(keepalives)])
	}
	require.Greater(t, in.Len(), 200*limit, "the total is far over the limit")
	r.send(t, in.String())
	answered := map[string]bool{}
	for i := 0; i < gets; i++ { // handlers run concurrently: any order
		res := r.wire.nextIQ(t)
		assert.Equal(t, iq.TypeResult, res.Type)
		answered[res.ID] = true
	}
	for i := 0; i < gets; i++ {
		assert.True(t, answered[fmt.Sprintf("k%d", i*100)], "k%d", i*100)
	}
	for i := 0; i < 1000-gets; i++ {
		select {
		case el := <-r.fb:
			assert.Equal(t, "message", el.Name.Local)
		case <-time.After(waitLong):
			t.Fatalf("message %d not delivered", i)
		}
	}
	assert.Nil(t, r.conn.Err())
	require.NoError(t, r.conn.Close())
	assert.NoError(t, r.served(t))
}

func TestNotWellFormed(t *testing.T) {
	for _, tc := range []struct {
		name string
		xml  string
	}{
		{"mismatched tags", `<iq type='get' id='a'><echo xmlns='` + hNS + `'></iq></echo>`},
		{"mismatched top-level end", `<message></presence>`},
		{"undefined entity", `<message><body>&bogus;</body></message>`},
		{"bad character reference", `<message><body>&#0;</body></message>`},
		{"control character in text", "<message><body>a\x01b</body></message>"},
		{"NUL in text", "<message><body>a\x00b</body></message>"},
		{"control character in attribute", "<message id='a\x02'/>"},
		{"< in attribute", `<iq type='get' id='a<b'><echo xmlns='` + hNS + `'/></iq>`},
		{"unquoted attribute", `<iq type=get id='x'/>`},
		{"bad element name", `<1iq/>`},
		{"invalid UTF-8", "<message><body>\xff\xfe</body></message>"},
		{"bare ampersand", `<message><body>a & b</body></message>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			r := newRig(t, rigOpts{})
			pending := goRequest(r.ep, "p1", iq.NewElement(hNS, "never"))
			r.wire.nextIQ(t)
			r.quiesce(t)
			r.sendAsync(tc.xml)
			err := r.served(t)
			assert.ErrorIs(t, err, stream.ErrNotWellFormed)
			el := r.wire.next(t)
			assert.True(t, isStreamErr(el, stream.NotWellFormed), "wrote %s", el)
			r.wire.waitEOF(t)
			assert.True(t, r.wire.sawEndTag())
			assert.ErrorIs(t, recvErr(t, pending, waitLong), iq.ErrClosed)
			assert.Empty(t, r.fb, "nothing reaches the fallback")
		})
	}
}

func TestRestrictedXMLAtTopLevel(t *testing.T) {
	for _, tc := range []struct {
		name string
		xml  string
	}{
		{"comment", `<!-- hello -->`},
		{"processing instruction", `<?foo bar?>`},
		{"doctype", `<!DOCTYPE x [<!ENTITY e "boom">]>`},
		{"comment after a stanza", `<presence/><!--x-->`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			r := newRig(t, rigOpts{})
			r.sendAsync(tc.xml)
			err := r.served(t)
			require.Error(t, err)
			el := r.wire.next(t)
			assert.True(t, isStreamErr(el, stream.RestrictedXML), "wrote %s", el)
			r.wire.waitEOF(t)
			assert.True(t, r.wire.sawEndTag())
			assert.NotErrorIs(t, err, stream.ErrNotWellFormed)
		})
	}
}
