package xmldec

import (
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
