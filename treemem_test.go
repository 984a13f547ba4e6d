package iq

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xmpp-iq/iq/internal/xmldec"
)

// bigIQ is a get whose payload has n items: more elements than a small
// tree holds, so that its tree is in a treeMem.
func bigIQ(id string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<iq xmlns='jabber:client' type='get' id='%s'><q xmlns='urn:test'>`, id)
	for i := range n {
		fmt.Fprintf(&b, `<item n='%d'>%s-%d</item>`, i, id, i)
	}
	b.WriteString(`</q></iq>`)
	return b.String()
}

// readIQ reads one stanza with b, as a stream's reader for an Endpoint
// made WithTreeReuse does.
func readIQ(t *testing.T, b *ElementBuilder, stanza string) *IQ {
	t.Helper()
	b.Reset()
	b.withIQ = true
	b.SetTreeReuse(true)
	require.NoError(t, xmldec.Decode([]byte(stanza), b))
	in, err := b.RootIQ()
	require.NoError(t, err)
	return in
}

// checkItems asserts that in is the bigIQ of id and n items.
func checkItems(t *testing.T, in *IQ, id string, n int) {
	t.Helper()
	require.NotNil(t, in.Payload)
	items := slices.Collect(in.Payload.Children())
	require.Len(t, items, n)
	for i, it := range items {
		assert.Equal(t, fmt.Sprint(i), it.AttrValue("n"))
		assert.Equal(t, fmt.Sprintf("%s-%d", id, i), it.Text())
	}
}

func TestReleaseReusesTheTreeOfAStanza(t *testing.T) {
	var b ElementBuilder
	// sync.Pool may drop what it is given (it does so at random under the
	// race detector, and at each collection): reuse is looked for over a
	// few rounds, and each tree's content checked in every one.
	reused := false
	for round := range 50 {
		id := fmt.Sprint("a", round)
		first := readIQ(t, &b, bigIQ(id, 20))
		require.NotNil(t, first.tree, "a big tree read as an IQ is given back by Release")
		checkItems(t, first, id, 20)
		items := &first.tree.e[0]
		first.Release()
		assert.Nil(t, first.Payload, "Release sets Payload to nil")
		assert.Nil(t, first.tree)

		id2 := fmt.Sprint("b", round)
		second := readIQ(t, &b, bigIQ(id2, 20))
		checkItems(t, second, id2, 20)
		if &second.tree.e[0] == items {
			reused = true
			break
		}
	}
	assert.True(t, reused, "a released tree's memory is reused by a later stanza")
}

func TestWithoutTreeReuseNoTreeIsGivenBack(t *testing.T) {
	var b ElementBuilder
	b.withIQ = true
	require.NoError(t, xmldec.Decode([]byte(bigIQ("plain", 20)), &b))
	in, err := b.RootIQ()
	require.NoError(t, err)
	assert.Nil(t, in.tree, "by default a tree is left to the collector")
	in.Release()
	assert.Nil(t, in.Payload)
}

func TestReleaseOfSmallOrBuiltIQsGivesNothingBack(t *testing.T) {
	var b ElementBuilder
	small := readIQ(t, &b, `<iq xmlns='jabber:client' type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>`)
	assert.Nil(t, small.tree, "a small tree is one block with its IQ, left to the collector")
	small.Release()
	assert.Nil(t, small.Payload, "Release lets go of the payload, given back or not")
	assert.Equal(t, "1", small.ID, "Release keeps the attributes")

	el := NewElement("urn:test", "q")
	built := &IQ{Type: TypeGet, ID: "2", Payload: el, Error: NewError(Cancel, Conflict, "")}
	built.Release()
	assert.Nil(t, built.Payload)
	assert.Nil(t, built.Error)
	assert.Equal(t, "q", el.Name.Local, "an element the program built is not cleared")

	var zero *IQ
	assert.Panics(t, func() { zero.Release() }, "a nil IQ is a programming error, as for its other methods")
}

// TestReleaseThroughACopyGivesNothingBack: an IQ copied by value
// carries the tree's memory too; a Release through the copy, or a second
// one through the original, must not give back memory that the original
// (or the stanza read since into the same memory) still uses.
func TestReleaseThroughACopyGivesNothingBack(t *testing.T) {
	var b ElementBuilder
	orig := readIQ(t, &b, bigIQ("orig", 20))
	m := orig.tree
	cp := *orig
	cp.Release()
	assert.Nil(t, cp.Payload, "the copy lets go of the tree")
	assert.Same(t, orig, m.owner.Load(), "a copy's Release gives nothing back")
	checkItems(t, orig, "orig", 20)

	orig.Release()
	assert.Nil(t, m.owner.Load(), "the original's Release gives the tree back")
	orig.Release() // a second Release: nothing

	// Whatever memory the next stanzas take, two trees in use never share it,
	// however often the stale copy is released.
	next := readIQ(t, &b, bigIQ("next", 20))
	stale := cp
	stale.tree = m // as if the copy had been made before the first Release
	stale.Release()
	other := readIQ(t, &b, bigIQ("other", 20))
	assert.NotSame(t, &next.tree.e[0], &other.tree.e[0], "two trees in use share memory")
	checkItems(t, next, "next", 20)
	checkItems(t, other, "other", 20)
}

func TestReleasedTreeKeepsItsStrings(t *testing.T) {
	var b ElementBuilder
	first := readIQ(t, &b, bigIQ("keep", 20))
	item := slices.Collect(first.Payload.Children())[3]
	n, text := item.AttrValue("n"), item.Text()
	first.Release()
	for i := range 10 {
		readIQ(t, &b, bigIQ(fmt.Sprint("x", i), 20)).Release()
	}
	assert.Equal(t, "3", n)
	assert.Equal(t, "keep-3", text)
}

func TestHugeTreeIsNotPooled(t *testing.T) {
	m := getTreeMem(maxPooledTree/80+1, 1, 1)
	in := &IQ{tree: m}
	m.owner.Store(in)
	in.Release()
	assert.Nil(t, m.owner.Load())
	for range 20 {
		got := getTreeMem(1, 1, 1)
		assert.NotSame(t, m, got, "a tree over maxPooledTree is left to the collector")
	}
}

// With a Sender that is not an AsyncSender, which may keep the replies it
// is given, WithTreeReuse releases nothing: an echoed reply kept by
// the Sender keeps the request's tree.
func TestReleaseRequestsNeedsAnAsyncSender(t *testing.T) {
	var b ElementBuilder
	req := readIQ(t, &b, bigIQ("kept", 20))
	m := req.tree
	require.NotNil(t, m)
	replies := make(chan *IQ, 1)
	c := NewCallee(SenderFunc(func(_ context.Context, r *IQ) error {
		replies <- r
		return nil
	}), WithTreeReuse())
	defer c.Close()
	c.Get("urn:test", "q", func(_ context.Context, r *IQ) (*Element, error) { return r.Payload, nil })
	c.Receive(context.Background(), req)
	reply := <-replies
	require.NoError(t, c.Drain(context.Background()))
	assert.Same(t, req, m.owner.Load(), "the request was not released")
	checkItems(t, reply, "kept", 20)
}

// TestBugSmallTreePinnedABigTreesMemory: memory given back only grew, so
// after one big stanza, every later one, however small, held arrays sized
// for it (2.6 MB for a 533-byte stanza after a 400 KB one), for as long as
// it was kept.
func TestBugSmallTreePinnedABigTreesMemory(t *testing.T) {
	var b ElementBuilder
	for range 20 { // sync.Pool may drop what it is given: a few rounds
		readIQ(t, &b, bigIQ("huge", 3000)).Release()
		small := readIQ(t, &b, bigIQ("small", 20))
		checkItems(t, small, "small", 20)
		assert.LessOrEqual(t, small.tree.size(), 1<<14, "a 20-item tree holds %d bytes", small.tree.size())
		small.Release()
	}
}

// TestBugSmallBlocksTookTreesTreeReuseGaveBack: when the builder's blocks
// first became exact, they took trees of up to 16 content nodes and
// attributes, rounded up to 16, which WithTreeReuse had read into memory
// that Release gives back: a result of five to seven items lost its reuse,
// and some shapes took more bytes than the block they had before.
func TestBugSmallBlocksTookTreesTreeReuseGaveBack(t *testing.T) {
	for n := 1; n <= 8; n++ {
		var b ElementBuilder
		in := readIQ(t, &b, bigIQ("x", n))
		checkItems(t, in, "x", n)
		// <q> and n items, each with its text: 2n content nodes, over
		// the 8 of a small tree from 5 items on.
		assert.Equal(t, n >= 5, in.tree != nil, "%d items: a tree Release gives back", n)
	}
}
