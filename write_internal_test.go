package iq

import (
	"encoding/xml"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

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
			for _, e := range q.extras() {
				names = append(names, e.Name.Local)
			}
			assert.Equal(t, tt.wantExtra, names)
			m, err := xml.Marshal(&q)
			require.NoError(t, err)
			for _, out := range []string{q.String(), string(m)} {
				var back IQ
				require.NoError(t, xml.Unmarshal([]byte(out), &back), out)
				require.True(t, q.Payload.Equal(back.Payload))
				require.Len(t, back.extras(), len(q.extras()), out)
				for i := range q.extras() {
					assert.True(t, q.extras()[i].Equal(back.extras()[i]), "extra %d in %s", i, out)
				}
				if q.Error != nil {
					assert.True(t, strings.HasSuffix(out, "</error></iq>"), "the <error/> comes last: %s", out)
				}
			}
		})
	}
}

// BenchmarkWriteAppendEscaped measures the escaper on the text it meets:
// plain ASCII, ASCII with markup now and then, and non-ASCII prose.
func BenchmarkWriteAppendEscaped(b *testing.B) {
	for _, bc := range []struct {
		name string
		in   string
		attr bool
	}{
		{"ascii-1k", strings.Repeat("hello world, plain text. ", 41), false},
		{"markup-1k", strings.Repeat("a < b && c > d, said \"e\" ", 40), false},
		{"nonascii-1k", strings.Repeat("données été ŝajnas 日本語 ", 30), false},
		{"attr-short", "user@example.com/resource-1", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 0, 4096)
			b.SetBytes(int64(len(bc.in)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				buf = appendEscaped(buf[:0], bc.in, bc.attr)
			}
		})
	}
}

// BenchmarkWriteIQ encodes a small IQ and one with a 10 KB text payload
// into a reused buffer, as stream.Conn does.
func BenchmarkWriteIQ(b *testing.B) {
	small := &IQ{ID: "id-12345", Type: TypeGet, To: "service.example.com", From: "user@example.com/res",
		Payload: NewElement("urn:example:echo", "query").Append(NewElement("urn:example:echo", "v").AppendText("hello"))}
	big := &IQ{ID: "id-12345", Type: TypeResult, To: "user@example.com/res",
		Payload: NewElement("urn:example:echo", "data").AppendText(strings.Repeat("0123456789abcdef", 640))}
	for _, bc := range []struct {
		name string
		iq   *IQ
	}{{"small", small}, {"text-10k", big}} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 0, 16<<10)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				var err error
				if buf, err = bc.iq.AppendXML(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

// escapeByRune is appendEscaped written plainly, one character at a time,
// for the differential test of its fast paths.
func escapeByRune(s string, attr bool) string {
	var sb strings.Builder
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && w == 1, !isXMLChar(r):
			sb.WriteString("\uFFFD")
		case r == '&':
			sb.WriteString("&amp;")
		case r == '<':
			sb.WriteString("&lt;")
		case r == '>':
			sb.WriteString("&gt;")
		case r == '\r':
			sb.WriteString("&#xD;")
		case attr && r == '"':
			sb.WriteString("&quot;")
		case attr && r == '\n':
			sb.WriteString("&#xA;")
		case attr && r == '\t':
			sb.WriteString("&#x9;")
		default:
			sb.WriteString(s[i : i+w])
		}
		i += w
	}
	return sb.String()
}

// TestWriteAppendEscapedMatchesPlainEscaper puts every kind of byte at
// every offset of a word, so that the eight-bytes-at-a-time scan is seen
// to stop for each, and compares with the plain escaper.
func TestWriteAppendEscapedMatchesPlainEscaper(t *testing.T) {
	specials := []string{"&", "<", ">", `"`, "'", "\r", "\n", "\t", "\x00", "\x1f", "\x7f", "\x80", "\xff",
		"é", "日", "😀", "\ufffe", "\xed\xa0\x80", "\xc3"}
	for _, sp := range specials {
		for off := 0; off < 20; off++ {
			in := strings.Repeat("a", off) + sp + strings.Repeat("b", 17)
			for _, attr := range []bool{false, true} {
				require.Equal(t, escapeByRune(in, attr), string(appendEscaped(nil, in, attr)), "%q attr=%v", in, attr)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 2000; n++ {
		var sb strings.Builder
		for k := rng.IntN(40); k > 0; k-- {
			if rng.IntN(4) == 0 {
				sb.WriteString(specials[rng.IntN(len(specials))])
			} else {
				sb.WriteByte(byte('a' + rng.IntN(26)))
			}
		}
		in := sb.String()
		for _, attr := range []bool{false, true} {
			require.Equal(t, escapeByRune(in, attr), string(appendEscaped(nil, in, attr)), "%q attr=%v", in, attr)
		}
	}
}

func FuzzWriteAppendEscaped(f *testing.F) {
	f.Add("plain text", false)
	f.Add(`a < b && "c" > d`, true)
	f.Add("\r\n\t\x00é\xff\ufffe", true)
	f.Fuzz(func(t *testing.T, in string, attr bool) {
		if got, want := string(appendEscaped(nil, in, attr)), escapeByRune(in, attr); got != want {
			t.Fatalf("appendEscaped(%q, %v) = %q, want %q", in, attr, got, want)
		}
	})
}

// TestBugBigStanzaEncodingGrewItsBufferByQuarters: append grows a large
// slice by about a quarter at a time, so encoding a 500 KB payload into a
// pooled 512-byte buffer allocated five times its size in all (23
// allocations); room doubles it: two and a half times (three and a half
// under the race detector, which does not fold slices.Grow's make into
// its append).
func TestBugBigStanzaEncodingGrewItsBufferByQuarters(t *testing.T) {
	q := NewElement("urn:test", "q")
	for i := range 5000 {
		q.Append(NewElement("urn:test", "item", "n", strconv.Itoa(i)).AppendText(strings.Repeat("x", 80)))
	}
	in := &IQ{Type: TypeResult, ID: "big", Payload: q}
	var n int
	least := uint64(math.MaxUint64)
	for range 3 { // the least of three: another goroutine may allocate meanwhile
		b := make([]byte, 0, 512)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		out, err := in.AppendXML(b)
		runtime.ReadMemStats(&after)
		require.NoError(t, err)
		n = len(out)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	require.Greater(t, n, 500_000)
	assert.LessOrEqual(t, least, uint64(4*n), "bytes allocated to encode %d bytes", n)
}

// tokenRoom counts at least the tokens and attributes AppendTokens
// writes, so that their room is made once.
func TestTokenRoomIsEnough(t *testing.T) {
	payload, err := ParseElement([]byte(`<q xmlns='urn:a' xmlns:p='urn:p' p:x='1' y='2'>t<plain xmlns=''>u<deep z='3'/></plain><b/>v</q>`))
	require.NoError(t, err)
	extra, err := ParseElement([]byte(`<iq type='get' id='e'><a xmlns='urn:1' k='v'/><b xmlns='urn:2'>t</b></iq>`))
	require.NoError(t, err)
	twoChildren, err := IQFromElement(extra)
	require.NoError(t, err)
	for name, in := range map[string]*IQ{
		"empty":        {Type: TypeResult, ID: "r"},
		"every attr":   {Type: TypeGet, ID: "g", To: "a@b", From: "c@d/e", Lang: "en", Payload: payload},
		"two children": twoChildren,
		"error": {Type: TypeError, ID: "x", Payload: payload, Error: &StanzaError{Type: Wait, Condition: ResourceConstraint,
			Text: "slow", Lang: "en", By: "b", Target: "t", App: NewElement("urn:app", "busy", "a", "1")}},
	} {
		toks, err := in.AppendTokens(nil)
		require.NoError(t, err, name)
		attrs := 0
		for _, tok := range toks {
			if s, ok := tok.(xml.StartElement); ok {
				attrs += len(s.Attr)
			}
		}
		n, a := in.tokenRoom()
		assert.LessOrEqual(t, len(toks), n, "%s: tokens", name)
		assert.LessOrEqual(t, attrs, a, "%s: attributes", name)
	}
}

// TestWriteCheckNamespaceEveryPosition: checkNamespace refuses a
// character XML cannot carry wherever it stands, inside the words its
// fast path skips or in the bytes after them, and lets any other through
// (non-ASCII included), by the rule of a character at a time.
func TestWriteCheckNamespaceEveryPosition(t *testing.T) {
	slow := func(s string) bool { // the rule, a rune at a time
		for i, r := range s {
			if r == utf8.RuneError {
				if _, w := utf8.DecodeRuneInString(s[i:]); w == 1 {
					return false
				}
			}
			if !isXMLChar(r) {
				return false
			}
		}
		return true
	}
	base := "urn:example:namespace:long-enough" // 33 bytes: four words and one
	for _, bad := range []string{"\x00", "\x1f", "\t", "\x7f", "é", "\xff", "\xc3", "\uFFFE", "日"} {
		for at := 0; at <= len(base); at++ {
			s := base[:at] + bad + base[at:]
			err := checkNamespace("element", xml.Name{Space: s, Local: "q"})
			assert.Equal(t, slow(s), err == nil, "%q at %d: %v", bad, at, err)
		}
	}
	assert.NoError(t, checkNamespace("element", xml.Name{Space: base, Local: "q"}))
}
