package iq_test

import (
	"encoding/xml"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq"
	"github.com/xmpp-iq/iq/internal/xmldec"
)

// noGrow hides ElementBuilder's Grow, so that the decoder hands it the
// parts of a tree without telling their number first.
type noGrow struct{ xmldec.Handler }

// builderInputs are trees of every shape the builder handles: text cut by
// comments, CDATA and entities, empty elements, attributes with and without
// escapes, namespaces, nesting.
var builderInputs = []struct{ name, xml string }{
	{"empty", `<a/>`},
	{"text", `<a>hello</a>`},
	{"attributes", `<a x='1' y="a&amp;b" z=''/>`},
	{"namespaces", `<a xmlns='u:1' xmlns:p='u:2' p:x='1' x='2'><p:b/><c xmlns=''/></a>`},
	{"cut text", `<a>t<!-- c -->u<![CDATA[<v>]]>&amp;&#x41;<?pi x?>w</a>`},
	{"mixed", `<a>t<b>u</b>v<c/><d>w<e>x</e></d>y</a>`},
	{"deep", strings.Repeat(`<a k='v'>t`, 50) + strings.Repeat(`</a>`, 50)},
	{"payload", string(sizedStanza(4 << 10))},
	{"big payload", string(sizedStanza(200 << 10))}, // Decode sizes its record up front
}

// With Grow, the builder carves a tree from arrays sized to it; without,
// from chunks. The trees are the same.
func TestElementBuilderGrowBuildsTheSameTree(t *testing.T) {
	for _, tc := range builderInputs {
		t.Run(tc.name, func(t *testing.T) {
			var sized, chunked iq.ElementBuilder
			require.NoError(t, xmldec.Decode([]byte(tc.xml), &sized))
			require.NoError(t, xmldec.Decode([]byte(tc.xml), noGrow{&chunked}))
			require.NotNil(t, sized.Root())
			assert.Equal(t, chunked.Root(), sized.Root())
			want, err := iq.ParseElement([]byte(tc.xml))
			require.NoError(t, err)
			assert.Equal(t, want, sized.Root())
			var ref iq.Element
			require.NoError(t, xml.Unmarshal([]byte(tc.xml), &ref))
			assert.True(t, ref.Equal(sized.Root()), "encoding/xml built another tree")
		})
	}
}

// A stanza's strings and arrays are its own: decoding the next stanza
// through the same Decoder and builder leaves an element already built
// unchanged.
func TestElementBuilderKeepsEarlierTrees(t *testing.T) {
	in := `<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams'>` +
		`<iq id='1' type='get'><q xmlns='urn:a'>first &amp; one</q></iq>` +
		`<iq id='2' type='set'><r xmlns='urn:b'>second, longer text</r></iq>`
	d := xmldec.NewDecoder(strings.NewReader(in), 1<<16)
	_, err := d.Next(nil)
	require.NoError(t, err)
	var b iq.ElementBuilder
	_, err = d.Next(&b)
	require.NoError(t, err)
	first := b.Root()
	require.NotNil(t, first)
	before := first.String()
	b.Reset()
	_, err = d.Next(&b)
	require.NoError(t, err)
	require.NotNil(t, b.Root())
	assert.Equal(t, before, first.String())
	assert.Equal(t, "first & one", first.Child("urn:a", "q").Text())
	assert.Equal(t, "second, longer text", b.Root().Child("urn:b", "r").Text())
}

// cycle reads data over and over.
type cycle struct {
	data []byte
	off  int
}

func (c *cycle) Read(p []byte) (int, error) {
	n := copy(p, c.data[c.off:])
	c.off = (c.off + n) % len(c.data)
	return n, nil
}

// Reading a stanza from a stream (as stream.Conn reads one that is not an
// iq; an iq it reads with RootIQ, below) costs four
// allocations whatever its size: the tree's elements, its content nodes,
// its attributes and the one string of its character data and attribute
// values; a small stanza's elements, nodes and attributes are one block.
// (One Decoder and one builder, no pool: the count is the same under the
// race detector.)
func TestStreamDecodeAllocations(t *testing.T) {
	for _, tc := range []struct {
		size int
		max  float64
	}{{100, 2}, {10 << 10, 4}, {100 << 10, 4}} {
		t.Run(fmt.Sprintf("%dB", tc.size), func(t *testing.T) {
			stanza := sizedStanza(tc.size)
			const header = `<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams'>`
			d := xmldec.NewDecoder(io.MultiReader(strings.NewReader(header), &cycle{data: stanza}), 1<<20)
			var b iq.ElementBuilder
			_, err := d.Next(nil) // the header
			require.NoError(t, err)
			read := func() {
				b.Reset()
				it, err := d.Next(&b)
				require.NoError(t, err)
				require.Equal(t, xmldec.KindElement, it.Kind)
			}
			next := func() {
				read()
				require.NotNil(t, b.Root())
			}
			for range 3 { // warm the buffers and the name cache
				next()
			}
			assert.LessOrEqual(t, testing.AllocsPerRun(20, next), tc.max)
			// Read as an IQ, as a stream does, the small stanza's IQ
			// shares its tree's block, and its top <iq> element is built
			// apart.
			asIQ := func() {
				read()
				if in, err := b.RootIQ(); err != nil || in.ID != "b7" {
					t.Fatalf("RootIQ: %v, %v", in, err)
				}
			}
			asIQ()
			want := tc.max
			if tc.size > 100 {
				want++ // a big tree's IQ is allocated apart
			}
			assert.LessOrEqual(t, testing.AllocsPerRun(20, asIQ), want)
			if tc.size > 100 && !raceEnabled {
				// With tree reuse, a big tree's memory is reused once
				// released: its string and its IQ are all that reading it
				// allocates. (The race detector makes sync.Pool drop what
				// it is given at random.)
				b.SetTreeReuse(true)
				defer b.SetTreeReuse(false)
				released := func() {
					read()
					in, err := b.RootIQ()
					if err != nil || in.ID != "b7" {
						t.Fatalf("RootIQ: %v, %v", in, err)
					}
					in.Release()
				}
				released()
				assert.LessOrEqual(t, testing.AllocsPerRun(20, released), 2.0)
			}
		})
	}
}

// TestElementBuilderRootIQ: RootIQ reads what IQFromElement reads, from
// trees of every size class (the small ones carry their IQ in their
// block), and fails as it does.
func TestElementBuilderRootIQ(t *testing.T) {
	const header = `<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams'>`
	tests := []struct {
		name, stanza, err string
	}{
		{"get", `<iq type='get' id='a1' to='x@y' from='y@x/r' xml:lang='en'><q xmlns='urn:x'/></iq>`, ""},
		{"result with text", `<iq type='result' id='a2'><q xmlns='urn:x'><v>hello</v></q></iq>`, ""},
		{"three attributes", `<iq type='result' id='a6' from='x@y'><q xmlns='urn:x'><v>hello</v></q></iq>`, ""},
		{"four attributes", `<iq type='result' id='a7' from='x@y' to='y@x/r'><q xmlns='urn:x'><v k='1'/></q></iq>`, ""},
		{"two elements, three attributes", `<iq type='get' id='a8' to='x@y'><q xmlns='urn:x'/></iq>`, ""},
		{"error", `<iq type='error' id='a3'><q xmlns='urn:x'/><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`, ""},
		{"eight elements", `<iq type='set' id='a4'><q xmlns='urn:x'><a/><b/><c/><d/><e/><f/></q></iq>`, ""},
		{"big", string(sizedStanza(4 << 10)), ""},
		{"two children", `<iq type='set' id='a5'><q xmlns='urn:x'/><r xmlns='urn:x'/></iq>`, ""},
		// Payloads that fill the larger small trees once the top <iq> is
		// built apart (the second round).
		{"payload, two elements, three attributes", `<iq type='get' id='b1'><q xmlns='urn:x' a='1' b='2'><v c='3'/></q></iq>`, ""},
		{"payload, two elements, five attributes", `<iq type='get' id='b2'><q xmlns='urn:x' a='1' b='2' c='3'><v d='4' e='5'/></q></iq>`, ""},
		{"payload, three elements, two attributes", `<iq type='get' id='b3'><q xmlns='urn:x' a='1'><v b='2'/><w/></q></iq>`, ""},
		{"payload, three elements, four attributes", `<iq type='get' id='b4'><q xmlns='urn:x' a='1' b='2'><v c='3'/><w d='4'/></q></iq>`, ""},
		{"payload, four elements, seven attributes", `<iq type='get' id='b5'><q xmlns='urn:x' a='1' b='2' c='3'><v d='4' e='5'/><w f='6'/><x g='7'/></q></iq>`, ""},
		{"not an iq", `<message id='m'><body>hi</body></message>`, "cannot read <message"},
	}
	var b iq.ElementBuilder
	d := xmldec.NewDecoder(strings.NewReader(header+strings.Repeat(func() string {
		var all strings.Builder
		for _, tt := range tests {
			all.WriteString(tt.stanza)
		}
		return all.String()
	}(), 2)), 1<<20)
	_, err := d.Next(nil)
	require.NoError(t, err)
	for round := range 2 { // the second time, RootIQ has been called before
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/%d", tt.name, round), func(t *testing.T) {
				b.Reset()
				_, err := d.Next(&b)
				require.NoError(t, err)
				got, err := b.RootIQ()
				if tt.err != "" {
					assert.ErrorContains(t, err, tt.err)
					assert.Nil(t, got)
					return
				}
				require.NoError(t, err)
				want, err := iq.IQFromElement(b.Root())
				require.NoError(t, err)
				assert.Equal(t, want, got)
				var first *iq.Element
				for c := range b.Root().Children() {
					first = c
					break
				}
				assert.Same(t, first, got.Payload, "the IQ shares the tree's children")
			})
		}
	}
	b.Reset()
	_, err = b.RootIQ()
	assert.ErrorContains(t, err, "nil element", "no tree built")
}

// bytesAllocated returns the bytes f allocates (runtime.MemStats.TotalAlloc
// around one call).
func bytesAllocated(t *testing.T, f func() error) uint64 {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	require.NoError(t, f())
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestBugRecordedStanzaMemoryRegression: recording a whole stanza before
// building its tree (so that the tree is a few allocations) made a hostile
// stanza cost much more memory than the decoder before it: a 1 MiB stanza
// of <a/> siblings allocated ~106-142 MB per ParseElement where 61 MB had
// been enough (58× its size), deep nesting ~100 MB for 67 MB (64×), many
// attributes 71 MB for 62 MB (59×), and the stream path as much while it
// read such a stanza. The record's events, names and stacks were wide,
// pointer-holding and grown a quarter at a time. Each path must now stay
// within 64× the input, the old decoder's worst (the figures are about
// 36×, 36× and 45× after the fix).
func TestBugRecordedStanzaMemoryRegression(t *testing.T) {
	const (
		size   = 256 << 10 // the ratio is the same at 1 MiB, and quicker under -race
		factor = 64
	)
	const header = `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`
	for _, kind := range []string{"siblings", "nesting", "attributes"} {
		data := shaped(kind, size)
		check := func(t *testing.T, alloc uint64) {
			t.Helper()
			assert.LessOrEqual(t, alloc, uint64(factor*len(data)),
				"%d bytes allocated for a %d-byte stanza: %.1f×", alloc, len(data), float64(alloc)/float64(len(data)))
		}
		t.Run(kind+"/ParseElement", func(t *testing.T) {
			check(t, bytesAllocated(t, func() error {
				_, err := iq.ParseElement(data)
				return err
			}))
		})
		t.Run(kind+"/stream", func(t *testing.T) {
			d := xmldec.NewDecoder(strings.NewReader(header+string(data)), 2*size)
			_, err := d.Next(nil)
			require.NoError(t, err)
			var b iq.ElementBuilder
			check(t, bytesAllocated(t, func() error {
				it, err := d.Next(&b)
				if err == nil && (it.Kind != xmldec.KindElement || b.Root() == nil) {
					err = fmt.Errorf("read %v, not an element", it.Kind)
				}
				return err
			}))
		})
	}
}

// StartContent places an element's children in its Content as they come;
// a count that turns out wrong (the decoder never gives one) still builds
// the tree the parts describe, without gaps.
func TestElementBuilderStartContentCounts(t *testing.T) {
	a := xml.Name{Local: "a"}
	for _, tc := range []struct {
		name     string
		announce int
		texts    []string
	}{
		{"exact", 2, []string{"x", "y"}},
		{"fewer than announced", 3, []string{"x"}},
		{"more than announced", 1, []string{"x", "y", "z"}},
		{"none announced", 0, []string{"x", "y"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b iq.ElementBuilder
			b.StartContent(a, nil, tc.announce)
			want := &iq.Element{Name: a}
			for _, s := range tc.texts {
				b.StartContent(a, nil, 1)
				b.Text(s)
				b.EndElement()
				want.Content = append(want.Content, iq.Node{Element: &iq.Element{Name: a, Content: []iq.Node{{Text: s}}}})
			}
			b.EndElement()
			require.NotNil(t, b.Root())
			assert.Equal(t, want, b.Root())
		})
	}
}

// A stream's builder builds each stanza's top <iq> apart, in memory the
// next stanza reuses (GrowTop): what RootIQ returns, and what Root returns,
// must stay as read whatever comes next.
func TestTopBuiltApartIsNeverShared(t *testing.T) {
	stanzas := []string{
		`<iq type='get' id='one' to='a@example.net' xml:lang='en'><q xmlns='urn:example:one' k='1'><v>first</v></q></iq>`,
		`<iq type='result' id='two' from='b@example.net'>text<r xmlns='urn:example:two'/><x xmlns='urn:example:extra'/></iq>`,
		`<iq type='error' id='three'><q xmlns='urn:example:one'/><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`,
		`<message id='four'><body>not an iq</body></message>`,
		`<iq type='set' id='five'/>`,
		`<iq type='get' id='six' to='c@example.net' from='d@example.net'><q xmlns='urn:example:six' a='1' b='2' c='3'><w>1</w><w>2</w><w>3</w></q></iq>`,
	}
	const header = `<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams'>`
	d := xmldec.NewDecoder(strings.NewReader(header+strings.Join(stanzas, "")), 1<<20)
	_, err := d.Next(nil)
	require.NoError(t, err)
	var b iq.ElementBuilder
	var got []string
	for range stanzas {
		b.Reset()
		it, err := d.Next(&b)
		require.NoError(t, err)
		if it.Name.Local == "iq" {
			in, err := b.RootIQ()
			require.NoError(t, err)
			x, err := xml.Marshal(in)
			require.NoError(t, err)
			got = append(got, string(x))
			continue
		}
		el := b.Root()
		x, err := xml.Marshal(el)
		require.NoError(t, err)
		got = append(got, string(x))
		// The elements kept, read again once every stanza is read: each
		// still says what it said.
		defer func(el *iq.Element, want string) {
			x, err := xml.Marshal(el)
			require.NoError(t, err)
			assert.Equal(t, want, string(x))
		}(el, string(x))
	}
	// Each IQ again, after the others: the same.
	d2 := xmldec.NewDecoder(strings.NewReader(header+strings.Join(stanzas, "")), 1<<20)
	_, err = d2.Next(nil)
	require.NoError(t, err)
	var b2 iq.ElementBuilder
	var kept []*iq.IQ
	var keptEls []*iq.Element
	for range stanzas {
		b2.Reset()
		it, err := d2.Next(&b2)
		require.NoError(t, err)
		if it.Name.Local == "iq" {
			// Root, as a stream's ReadElement or fallback calls it, gives
			// an element that stays as read too.
			el := b2.Root()
			want, err := xml.Marshal(el)
			require.NoError(t, err)
			defer func() {
				x, err := xml.Marshal(el)
				require.NoError(t, err)
				assert.Equal(t, string(want), string(x))
			}()
			in, err := b2.RootIQ()
			require.NoError(t, err)
			kept = append(kept, in)
		} else {
			keptEls = append(keptEls, b2.Root())
		}
	}
	b2.Reset()
	var again []string
	ki, ke := 0, 0
	for _, s := range stanzas {
		var x []byte
		if strings.HasPrefix(s, "<iq") {
			x, err = xml.Marshal(kept[ki])
			ki++
		} else {
			x, err = xml.Marshal(keptEls[ke])
			ke++
		}
		require.NoError(t, err)
		again = append(again, string(x))
	}
	assert.Equal(t, got, again)
	assert.Equal(t, "one", kept[0].ID)
	assert.Equal(t, "en", kept[0].Lang)
	assert.Equal(t, "first", kept[0].Payload.Content[0].Element.Content[0].Text)
	assert.Equal(t, 2, kept[1].NumChildren())
	assert.Equal(t, "urn:example:two", kept[1].Payload.Name.Space)
	require.NotNil(t, kept[2].Error)
	assert.Nil(t, kept[3].Payload)
	assert.Len(t, kept[4].Payload.Attr, 3)
}

// A small IQ read from a stream costs its payload's tree, with the IQ, in
// one block, and one string: its top <iq> element, built apart, costs
// nothing (672 bytes a stanza before, the top element and its attributes
// in the block).
func TestStreamIQBytes(t *testing.T) {
	const header = `<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams'>`
	stanza := []byte(`<iq type='get' id='abcdefgh' to='x@example.net'><query xmlns='urn:example:echo'><v>hello</v></query></iq>`)
	d := xmldec.NewDecoder(io.MultiReader(strings.NewReader(header), &cycle{data: stanza}), 1<<20)
	_, err := d.Next(nil)
	require.NoError(t, err)
	var b iq.ElementBuilder
	read := func() error {
		b.Reset()
		if _, err := d.Next(&b); err != nil {
			return err
		}
		in, err := b.RootIQ()
		if err == nil && in.Payload.Name.Local != "query" {
			err = fmt.Errorf("read %v", in)
		}
		return err
	}
	for range 3 { // warm the buffers and the name cache
		require.NoError(t, read())
	}
	const n = 200
	per := bytesAllocated(t, func() error {
		for range n {
			if err := read(); err != nil {
				return err
			}
		}
		return nil
	}) / n
	t.Logf("%d bytes per stanza read as an IQ", per)
	assert.LessOrEqual(t, per, uint64(400), "bytes per stanza read as an IQ")
}

// TestBugTopIQBuiltWithoutResetMixedInTheLastStanza: a builder reading
// stanzas builds each top <iq> in content nodes it reuses, and places a
// child or a run of text there by writing its pointer alone; a caller that
// skipped Reset got the last stanza's children back under the new text.
func TestBugTopIQBuiltWithoutResetMixedInTheLastStanza(t *testing.T) {
	iqName := xml.Name{Space: "jabber:client", Local: "iq"}
	build := func(b *iq.ElementBuilder, first, second func()) *iq.Element {
		b.GrowTop(iqName, 0, 2, 2, 2, 0)
		b.StartContent(iqName, nil, 2)
		first()
		second()
		b.EndElement()
		return b.Root()
	}
	var b iq.ElementBuilder
	b.SetTreeReuse(true)
	b.Reset()
	child := func(name string) func() {
		return func() { b.StartContent(xml.Name{Local: name}, nil, 0); b.EndElement() }
	}
	text := func(s string) func() { return func() { b.Text(s) } }

	build(&b, child("a"), text("x")) // <iq><a/>x</iq>
	_, err := b.RootIQ()
	require.NoError(t, err)
	got := build(&b, text("y"), child("b")) // no Reset: <iq>y<b/></iq>

	require.Len(t, got.Content, 2)
	assert.Nil(t, got.Content[0].Element)
	assert.Equal(t, "y", got.Content[0].Text)
	require.NotNil(t, got.Content[1].Element)
	assert.Equal(t, "b", got.Content[1].Element.Name.Local)
	assert.Empty(t, got.Content[1].Text)
}
