package iq

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteIsNCName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{name: "letters", in: "query", want: true},
		{name: "underscore first", in: "_x", want: true},
		{name: "digits, hyphen and dot after the first", in: "a1-b.c_d", want: true},
		{name: "non-ASCII letter", in: "données", want: true},
		{name: "CJK", in: "日本", want: true},
		{name: "combining mark after first", in: "e\u0301", want: true},
		{name: "middle dot after first", in: "a\u00b7b", want: true},
		{name: "empty", in: "", want: false},
		{name: "digit first", in: "1abc", want: false},
		{name: "hyphen first", in: "-a", want: false},
		{name: "dot first", in: ".a", want: false},
		{name: "colon", in: "a:b", want: false},
		{name: "space", in: "a b", want: false},
		{name: "less than", in: "a<b", want: false},
		{name: "greater than", in: "a>", want: false},
		{name: "slash", in: "a/", want: false},
		{name: "quote", in: `a"`, want: false},
		{name: "equals", in: "a=b", want: false},
		{name: "invalid UTF-8", in: "a\xff", want: false},
		{name: "U+FFFE", in: "a\ufffe", want: false},
		{name: "U+FFFD", in: "a\ufffd", want: false},
		{name: "combining mark first", in: "\u0301a", want: false},
		{name: "NUL", in: "a\x00", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, isNCName(tt.in))
		})
	}
}

func TestWriteAppendEscaped(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantText string
		wantAttr string
	}{
		{name: "plain", in: "abc", wantText: "abc", wantAttr: "abc"},
		{name: "markup", in: `&<>"'`, wantText: `&amp;&lt;&gt;"'`, wantAttr: `&amp;&lt;&gt;&quot;'`},
		{name: "whitespace", in: "\t\n\r", wantText: "\t\n&#xD;", wantAttr: "&#x9;&#xA;&#xD;"},
		{name: "controls", in: "\x00\x0b\x1f", wantText: "\ufffd\ufffd\ufffd", wantAttr: "\ufffd\ufffd\ufffd"},
		{name: "noncharacters", in: "\ufffe\uffff", wantText: "\ufffd\ufffd", wantAttr: "\ufffd\ufffd"},
		{name: "invalid UTF-8", in: "a\xffb\xc3", wantText: "a\ufffdb\ufffd", wantAttr: "a\ufffdb\ufffd"},
		{name: "non-ASCII kept", in: "é😀\u007f", wantText: "é😀\u007f", wantAttr: "é😀\u007f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.wantText, string(appendEscaped(nil, tt.in, false)))
			assert.Equal(t, tt.wantAttr, string(appendEscaped(nil, tt.in, true)))
			assert.Equal(t, "x"+tt.wantText, string(appendEscaped([]byte("x"), tt.in, false)))
		})
	}
}

// TestWriteExtraChildrenRoundTrip checks the unexported extra children: kept
// in order on decoding, written after the payload by both encoders.
func TestWriteExtraChildrenRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantExtra []string
	}{
		{name: "none", in: `<iq type='get' id='1'><a xmlns='u:1'/></iq>`},
		{name: "two extra", in: `<iq type='get' id='1'><a xmlns='u:1'/><b xmlns='u:2'/><c xmlns='u:3'>t</c></iq>`, wantExtra: []string{"b", "c"}},
		{name: "extra beside error", in: `<iq type='error' id='1'><a xmlns='u:1'/><b xmlns='u:2'/><error type='cancel'/></iq>`, wantExtra: []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var q IQ
			require.NoError(t, xml.Unmarshal([]byte(tt.in), &q))
			var names []string
			for _, e := range q.extra {
				names = append(names, e.Name.Local)
			}
			assert.Equal(t, tt.wantExtra, names)
			m, err := xml.Marshal(&q)
			require.NoError(t, err)
			for _, out := range []string{q.String(), string(m)} {
				var back IQ
				require.NoError(t, xml.Unmarshal([]byte(out), &back), out)
				require.True(t, q.Payload.Equal(back.Payload))
				require.Len(t, back.extra, len(q.extra), out)
				for i := range q.extra {
					assert.True(t, q.extra[i].Equal(back.extra[i]), "extra %d in %s", i, out)
				}
				if q.Error != nil {
					assert.True(t, strings.HasSuffix(out, "</error></iq>"), "the <error/> comes last: %s", out)
				}
			}
		})
	}
}
