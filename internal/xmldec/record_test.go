package xmldec

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The record of a big element is dropped once a smaller one follows, so
// that one big stanza does not keep its memory for the rest of the stream;
// a stream of big stanzas keeps reusing it.
func TestRecordShrinksAfterBigElement(t *testing.T) {
	big := `<iq>` + strings.Repeat(`<a k='v'>text</a>`, 1<<14) + `</iq>`
	small := `<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>`
	for _, tc := range []struct {
		name   string
		stream []string
		shrunk bool
	}{
		{"big then small", []string{big, small}, true},
		{"big then big", []string{big, big}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(strings.NewReader(streamHeader+strings.Join(tc.stream, "")), 1<<20)
			_, err := d.Next(nil)
			require.NoError(t, err)
			var caps [][3]int
			for range tc.stream {
				var tr Tree
				it, err := d.Next(&tr)
				require.NoError(t, err)
				require.Equal(t, KindElement, it.Kind)
				caps = append(caps, [3]int{cap(d.evs), cap(d.rattrs), cap(d.sb)})
			}
			first, last := caps[0], caps[len(caps)-1]
			for i := range first {
				require.Greater(t, first[i], 4096, "buffer %d of the big element", i)
				if tc.shrunk {
					assert.Less(t, last[i], 4096, "buffer %d after a small element", i)
				} else {
					assert.Equal(t, first[i], last[i], "buffer %d after another big element", i)
				}
			}
		})
	}
}

// The stacks and per-tag scratch of a deep or wide element are dropped
// once a smaller one follows, and kept for another like it.
func TestScratchShrinksAfterDeepOrWideElement(t *testing.T) {
	deep := `<iq>` + strings.Repeat(`<a>`, 1<<13) + strings.Repeat(`</a>`, 1<<13) + `</iq>`
	var wide strings.Builder
	wide.WriteString(`<iq`)
	for i := range 1 << 13 {
		fmt.Fprintf(&wide, ` a%d='&amp;&amp;&amp;&amp;'`, i)
	}
	wide.WriteString(`/>`)
	small := `<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>`
	caps := func(d *Decoder) map[string]int {
		return map[string]int{"stk": cap(d.stk), "rem": cap(d.rem), "attrs": cap(d.attrs), "anames": cap(d.anames), "vals": cap(d.vals)}
	}
	for _, tc := range []struct {
		name   string
		big    string
		bufs   []string // those the big element grows
		shrunk bool
	}{
		{"deep then small", deep, []string{"stk", "rem"}, true},
		{"deep then deep", deep, []string{"stk", "rem"}, false},
		{"wide then small", wide.String(), []string{"attrs", "anames", "vals"}, true},
		{"wide then wide", wide.String(), []string{"attrs", "anames", "vals"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			second := tc.big
			if tc.shrunk {
				second = small
			}
			d := NewDecoder(strings.NewReader(streamHeader+tc.big+second), 1<<20)
			_, err := d.Next(nil)
			require.NoError(t, err)
			var tr Tree
			_, err = d.Next(&tr)
			require.NoError(t, err)
			first := caps(d)
			_, err = d.Next(&tr)
			require.NoError(t, err)
			last := caps(d)
			for _, b := range tc.bufs {
				require.Greater(t, first[b], 4096, "%s after the big element", b)
				if tc.shrunk {
					assert.Less(t, last[b], 4096, "%s after a small element", b)
				} else {
					assert.Equal(t, first[b], last[b], "%s after another big element", b)
				}
			}
		})
	}
}

// The names kept from one element to the next (so that a stream's
// repeated names are found without interning) are few and short: an
// element with many distinct names, or a long one, leaves none behind.
func TestNamesKeptAreFewAndShort(t *testing.T) {
	var many strings.Builder
	many.WriteString(`<iq>`)
	for i := range 2 * keepNames {
		fmt.Fprintf(&many, `<n%d a%d='v'/>`, i, i)
	}
	many.WriteString(`</iq>`)
	long := `<iq><` + strings.Repeat("x", 200) + `/></iq>`
	small := `<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>`
	for _, big := range []string{many.String(), long} {
		d := NewDecoder(strings.NewReader(streamHeader+big+small+small), 1<<20)
		_, err := d.Next(nil)
		require.NoError(t, err)
		var tr Tree
		_, err = d.Next(&tr)
		require.NoError(t, err)
		assert.Empty(t, d.names, "names after the big element")
		for range 2 {
			_, err = d.Next(&tr)
			require.NoError(t, err)
			assert.LessOrEqual(t, len(d.names), 8, "names after a small element")
			for _, n := range d.names {
				assert.LessOrEqual(t, len(n.Local), 96)
				assert.LessOrEqual(t, len(n.Space), 96)
			}
		}
	}
}
