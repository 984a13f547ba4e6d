package iq

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/xmpp-iq/iq/internal/xmldec"
)

// ElementBuilder builds an Element from the parts of one element, as the
// package's own XML decoder reports them (resolved names, attributes
// without namespace declarations, merged character data). Package stream
// uses it to build stanzas without encoding/xml's per-token cost. After a
// complete element, Root returns it; Reset prepares the builder for the
// next one, and elements already built stay valid. (A builder reading
// stanzas builds each top <iq> apart, in memory the next stanza reuses:
// see GrowTop. RootIQ reads it; Root returns a copy.)
//
// The decoder tells the builder the size of each element tree first
// (Grow), so that a tree's elements share one array and its content nodes
// another, sized to the tree: with the one string of its character data
// and attribute values and the one array of its attributes, a decoded
// stanza costs four allocations whatever its size, and a small one two
// (its string, and one block for its elements, nodes and attributes). The
// price is that an Element kept from a tree keeps the whole tree's memory
// alive. With SetTreeReuse, a builder reading stanzas (RootIQ) takes a
// big tree's three arrays, with a small header, from the memory that
// IQ.Release gives back, when there is some: a released stanza's tree
// costs no allocation but its string. Without Grow, elements are carved
// from chunks of growing size, which a kept Element may share with its
// neighbours. An ElementBuilder is not safe for concurrent use.
type ElementBuilder struct {
	root  *Element
	stack []openElement
	nodes []Node    // content of the open elements
	slab  []Element // slab[si:] and nslab[ni:] are free: indices, which
	nslab []Node    // unlike reslicing write no pointer, so no barrier
	si    int
	ni    int

	chunk, nchunk int // sizes of the last chunks

	// withIQ is set by the first RootIQ: from then on a small tree is
	// allocated with room for the IQ read from it, iq, and the top <iq>
	// element of a stanza is built apart (see GrowTop), in top and
	// topNodes, which the next stanza reuses.
	withIQ   bool
	iq       *IQ
	topApart bool
	top      Element
	topNodes []Node
	// reuse is set by SetTreeReuse: big trees of stanzas are built in
	// memory that IQ.Release gives back (see treeMem), mem the memory of
	// the one being built, for RootIQ to hand to the IQ it reads.
	reuse bool
	mem   *treeMem
}

// SetTreeReuse sets whether the big trees of the stanzas b reads (those
// RootIQ reads, from the first on) are built in memory that IQ.Release
// gives back, and that earlier trees gave back (iq.WithTreeReuse; package
// stream sets it for an Endpoint made so). Off by default. Every element
// of such a tree, Root's included, is then released with its IQ; call
// RootIQ once per tree.
func (b *ElementBuilder) SetTreeReuse(on bool) {
	b.reuse = on
	if on {
		b.withIQ = true // as after a first RootIQ: the first tree is reused too
	}
}

// Root returns the element built, or nil if none is complete.
func (b *ElementBuilder) Root() *Element {
	el := b.built()
	if el != nil && el == &b.top {
		// Built apart, in memory the next stanza reuses: the caller gets
		// a copy it may keep.
		return &Element{Name: el.Name, Attr: slices.Clone(el.Attr), Content: slices.Clone(el.Content)}
	}
	return el
}

// built is the element built, or nil if none is complete, where it was
// built.
func (b *ElementBuilder) built() *Element {
	if len(b.stack) > 0 {
		return nil
	}
	return b.root
}

// Reset prepares b for another element.
func (b *ElementBuilder) Reset() {
	b.root, b.iq, b.mem = nil, nil, nil
	if b.topApart {
		// Nothing of the last stanza is kept through its top element (its
		// attributes are the decoder's scratch, cleared here too), nor
		// room for a hostile one's many children.
		clear(b.top.Attr)
		clear(b.topNodes)
		b.topApart, b.top = false, Element{}
		if cap(b.topNodes) > 64 {
			b.topNodes = nil
		}
	}
	clear(b.stack)
	b.stack = b.stack[:0]
	clear(b.nodes)
	b.nodes = b.nodes[:0]
}

// Grow makes room for the next elements elements, nodes content nodes
// (child elements and runs of character data, over all the elements) and
// attrs attributes, so that building them takes one allocation for a
// small tree (see smallTree), three for a big one, sized to it. It
// returns the room for the attributes, attrs long, for the caller to fill
// and carve the attr arguments of StartElement from, or nil when it made
// none. The decoder calls it with the size of each element tree before
// the tree's first StartElement.
func (b *ElementBuilder) Grow(elements, nodes, attrs int) []xml.Attr {
	b.iq, b.mem = nil, nil
	switch {
	case elements == 0:
		// Nothing but a top element built apart (see GrowTop): the IQ
		// alone, for a builder reading stanzas.
		b.slab, b.si, b.nslab, b.ni = nil, 0, nil, 0
		if b.withIQ {
			b.iq = new(IQ)
		}
		return nil
	case elements <= smallTree[0] && nodes <= smallTree[1] && attrs <= smallTree[2]:
		// One block of the size the tree needs, with the IQ that RootIQ
		// will read from it when b reads stanzas: an IQ read from a stream
		// costs no allocation of its own.
		size, _ := blockSize([3]int{elements, nodes, attrs})
		e, n, a, iq := treeBlockFor(size, b.withIQ).alloc()
		b.iq = iq
		return b.use(e[:elements], n[:nodes], a[:attrs])
	}
	if b.withIQ && b.reuse {
		// A big tree of a stanza: in memory that IQ.Release may give
		// back, and that may be given back memory (see treeMem).
		m := getTreeMem(elements, nodes, attrs)
		b.mem = m
		return b.use(m.e[:elements], m.n[:nodes], m.a[:attrs])
	}
	if len(b.slab)-b.si < elements {
		b.slab, b.si = make([]Element, elements), 0
	}
	if len(b.nslab)-b.ni < nodes {
		b.nslab, b.ni = make([]Node, nodes), 0
	}
	return nil
}

// GrowTop is Grow for a decoder that can build the top element apart
// (xmldec.TopSizer), told the top element's name and its counts of
// attributes and content nodes beside the tree's. A builder reading
// stanzas (one that RootIQ was called on) builds a top <iq> apart, in
// memory of its own that the next stanza reuses, for RootIQ keeps only
// its children and the values of its attributes: the tree allocated is
// the payload's alone, with the IQ (Root still returns an element the
// caller may keep, copied; with SetTreeReuse, its children are released
// with the IQ). It returns the room for the attributes below the top
// element, and apart true, or does what Grow does and returns apart
// false.
func (b *ElementBuilder) GrowTop(top xml.Name, topAttrs, topContent, elements, nodes, attrs int) ([]xml.Attr, bool) {
	if !b.withIQ || top.Local != "iq" || !isStreamNS(top.Space) {
		b.topApart = false // even for a caller that skipped Reset
		return b.Grow(elements, nodes, attrs), false
	}
	b.topApart = true
	return b.Grow(elements-1, nodes-topContent, attrs-topAttrs), true
}

// smallTree is the most elements, content nodes and attributes a tree
// read in one block (treeBlock) may have. The typical stanza has a few
// elements and content nodes and few attributes below its top element,
// which a stanza read from a stream builds apart (GrowTop): its payload
// and IQ take one allocation, in a block of the size they need (9 to 12
// attributes take 12). A larger tree takes an array of each, sized to it,
// and its IQ apart; with SetTreeReuse, arrays that IQ.Release gives back.
// Every byte allocated is the collector's work, which with many requests
// pending grows with the heap it marks.
var smallTree = [3]int{8, 8, 12}

// use makes e and n the chunks the next elements and content nodes are
// carved from, and returns a.
func (b *ElementBuilder) use(e []Element, n []Node, a []xml.Attr) []xml.Attr {
	b.slab, b.si, b.nslab, b.ni = e, 0, n, 0
	if len(e) == 0 {
		b.slab = nil
	}
	if len(n) == 0 {
		b.nslab = nil
	}
	if len(a) == 0 {
		return nil
	}
	return a
}

func (b *ElementBuilder) newElement() *Element {
	if b.si == len(b.slab) {
		b.chunk = min(max(2*b.chunk, 4), 64)
		b.slab, b.si = make([]Element, b.chunk), 0
	}
	e := &b.slab[b.si]
	if b.si++; b.si == len(b.slab) {
		b.slab, b.si = nil, 0 // keep no finished tree alive
	}
	return e
}

// StartElement opens an element named name with attributes attr, which
// the builder keeps.
func (b *ElementBuilder) StartElement(name xml.Name, attr []xml.Attr) {
	e := b.newElement()
	e.Name, e.Attr = name, attr
	if len(b.stack) > 0 {
		b.add(Node{Element: e})
	} else {
		b.root = e
	}
	b.push(e, len(b.nodes))
}

// StartContent opens an element named name with attributes attr, which
// the builder keeps, and which holds content content nodes (child elements
// and runs of character data, the decoder having merged adjacent runs):
// they are placed in its Content as they arrive, without being stacked
// and copied. The decoder calls it rather than StartElement once it has
// read the whole element.
func (b *ElementBuilder) StartContent(name xml.Name, attr []xml.Attr, content int) {
	if len(b.stack) == 0 && b.topApart {
		b.startTop(name, attr, content)
		return
	}
	e := b.newElement()
	e.Name, e.Attr = name, attr
	if len(b.stack) > 0 {
		b.addElement(e)
	} else {
		b.root = e
	}
	if content > 0 {
		e.Content = b.newNodes(content)
	}
	b.push(e, ^0)
}

// startTop opens the top element built apart (see GrowTop).
func (b *ElementBuilder) startTop(name xml.Name, attr []xml.Attr, content int) {
	e := &b.top
	e.Name, e.Attr, e.Content = name, attr, nil
	if content > 0 {
		if cap(b.topNodes) < content {
			b.topNodes = make([]Node, content)
		}
		e.Content = b.topNodes[:content:content]
		// Zero, as addElement and Text expect an announced place to be,
		// even for a caller that skipped Reset after the last stanza.
		clear(e.Content)
	}
	b.root = e
	b.push(e, ^0)
}

// openElement is an element being built: its content starts at mark in
// nodes, or, when mark is ^i, fills its own Content, next at i.
type openElement struct {
	e    *Element
	mark int
}

// push opens e, whose content is marked by mark. The stack doubles when
// full, so that deep nesting copies it a few times rather than many.
func (b *ElementBuilder) push(e *Element, mark int) {
	if len(b.stack) == cap(b.stack) {
		b.stack = slices.Grow(b.stack, max(len(b.stack), 16))
	}
	b.stack = append(b.stack, openElement{e, mark})
}

// addElement adds e to the content of the open element: in the place
// announced for it (the content node there is still zero: only e's
// pointer is written), or as add does.
func (b *ElementBuilder) addElement(e *Element) {
	o := &b.stack[len(b.stack)-1]
	if i := ^o.mark; i >= 0 && i < len(o.e.Content) {
		o.e.Content[i].Element = e
		o.mark = ^(i + 1)
		return
	}
	b.add(Node{Element: e})
}

// add adds n to the content of the open element.
func (b *ElementBuilder) add(n Node) {
	o := &b.stack[len(b.stack)-1]
	if m := o.mark; m < 0 {
		e := o.e
		if i := ^m; i < len(e.Content) {
			e.Content[i] = n
			o.mark = ^(i + 1)
			return
		}
		// More content than announced: stack the rest.
		b.nodes = append(b.nodes, e.Content...)
		e.Content = nil
		o.mark = len(b.nodes) - ^m
	}
	b.nodes = append(b.nodes, n)
}

// newNodes returns n content nodes carved from the current chunk.
func (b *ElementBuilder) newNodes(n int) []Node {
	if len(b.nslab)-b.ni < n {
		b.nchunk = min(max(2*b.nchunk, 8), 128)
		b.nslab, b.ni = make([]Node, max(n, b.nchunk)), 0
	}
	c := b.nslab[b.ni : b.ni+n : b.ni+n]
	if b.ni += n; b.ni == len(b.nslab) {
		b.nslab, b.ni = nil, 0 // keep no finished tree alive
	}
	return c
}

// Text adds character data to the open element.
func (b *ElementBuilder) Text(s string) {
	if len(b.stack) == 0 || s == "" {
		return
	}
	o := &b.stack[len(b.stack)-1]
	if m := o.mark; m < 0 {
		i, c := ^m, o.e.Content
		if i > 0 && c[i-1].Element == nil {
			c[i-1].Text += s
			return
		}
		if i < len(c) {
			c[i].Text = s // the place announced for it, still zero
			o.mark = ^(i + 1)
			return
		}
	} else if n := len(b.nodes); n > m && b.nodes[n-1].Element == nil {
		b.nodes[n-1].Text += s
		return
	}
	b.add(Node{Text: s})
}

// EndElement closes the open element.
func (b *ElementBuilder) EndElement() {
	if len(b.stack) == 0 {
		return
	}
	o := &b.stack[len(b.stack)-1]
	e, m := o.e, o.mark
	o.e = nil
	b.stack = b.stack[:len(b.stack)-1]
	if m < 0 {
		// Filled in place; fewer nodes than announced leave no gap.
		e.Content = e.Content[:^m]
		if len(e.Content) == 0 {
			e.Content = nil
		}
		return
	}
	if n := len(b.nodes) - m; n > 0 {
		e.Content = b.newNodes(n)
		copy(e.Content, b.nodes[m:])
		clear(b.nodes[m:])
		b.nodes = b.nodes[:m]
	}
}

// ParseElement decodes the first element of data, as xml.Unmarshal into
// an Element would, with the package's own decoder (several times faster,
// and checked against encoding/xml by differential fuzzing). Syntax errors
// are *xml.SyntaxError. An element longer than the decoder's ceiling on
// one item, 1 GiB, fails ("item larger than the maximum size").
func ParseElement(data []byte) (*Element, error) {
	b := builders.Get().(*ElementBuilder)
	b.Reset()
	err := xmldec.Decode(data, b)
	root := b.Root()
	b.Reset()
	if cap(b.stack) > 256 || cap(b.nodes) > 1024 {
		b.stack, b.nodes = nil, nil
	}
	b.slab, b.nslab, b.si, b.ni = nil, nil, 0, 0 // the next tree is not to share their memory
	builders.Put(b)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("iq: no element in input")
		}
		return nil, err
	}
	return root, nil
}

// builders keeps ParseElement's builders, whose stacks are reused.
var builders = sync.Pool{New: func() any { return new(ElementBuilder) }}

// IQFromElement reads a decoded <iq> element (in jabber:client,
// jabber:server, jabber:component:accept or no namespace) as an IQ, as
// UnmarshalXML does. The IQ shares the element's children.
func IQFromElement(el *Element) (*IQ, error) {
	if err := checkIQElement(el); err != nil {
		return nil, err
	}
	in := new(IQ)
	in.fromElement(el)
	return in, nil
}

// RootIQ returns the element built (Root) read as an IQ, as IQFromElement
// does, and fails as it does when there is none or it is not an <iq>.
// A builder that reads stanzas calls it for each <iq> it builds: from the
// first call on, each small tree the builder makes is allocated together
// with room for its IQ, so that reading an IQ costs one allocation fewer.
// (A tree that is not read as an IQ then carries 112 unused bytes.)
func (b *ElementBuilder) RootIQ() (*IQ, error) {
	b.withIQ = true
	el := b.built() // read, not kept: built apart or not, no copy
	if err := checkIQElement(el); err != nil {
		return nil, err
	}
	in := b.iq
	b.iq = nil
	if in == nil {
		in = new(IQ)
	}
	in.fromElement(el)
	if m := b.mem; m != nil {
		b.mem = nil
		in.tree = m
		m.owner.Store(in)
	}
	return in, nil
}

// checkIQElement refuses what IQFromElement cannot read as an IQ.
func checkIQElement(el *Element) error {
	if el == nil {
		return errors.New("iq: nil element")
	}
	if el.Name.Local != "iq" || !isStreamNS(el.Name.Space) {
		return fmt.Errorf("iq: cannot read <%s xmlns=%q> as an IQ", el.Name.Local, el.Name.Space)
	}
	return nil
}
