package xmldec

import "encoding/xml"

// Element is a decoded element, shaped like iq.Element: resolved names,
// attributes without namespace declarations, content in document order
// with adjacent character data merged.
type Element struct {
	Name    xml.Name
	Attr    []xml.Attr
	Content []Node
}

// Node is a child element when Element is not nil, else character data.
type Node struct {
	Element *Element
	Text    string
}

// Tree is a Handler that builds an Element tree, for the tests: it mirrors
// iq.ElementBuilder, which package iq cannot share with this package.
//
// Tree is a Handler that builds an Element tree. After a successful
// decode, Root is the element read. A Tree may be reused after Reset.
//
// Elements and content slices are carved from shared chunks, and each
// element's content is kept aside until its end, then copied into a slice
// of exactly its length: a few allocations per stanza rather than one or
// more per node. The price is that a retained element may keep a chunk
// (a few kilobytes) alive.
type Tree struct {
	Root  *Element
	stack []*Element
	marks []int  // where each open element's content starts in nodes
	nodes []Node // content of the open elements
	slab  []Element
	nslab []Node

	chunk, nchunk int // sizes of the last chunks
}

// Reset prepares t for another element. Elements it built stay valid.
func (t *Tree) Reset() {
	t.Root = nil
	t.stack = t.stack[:0]
	t.marks = t.marks[:0]
	clear(t.nodes)
	t.nodes = t.nodes[:0]
}

func (t *Tree) newElement() *Element {
	if len(t.slab) == 0 {
		t.chunk = min(max(2*t.chunk, 4), 64)
		t.slab = make([]Element, t.chunk)
	}
	e := &t.slab[0]
	t.slab = t.slab[1:]
	return e
}

// StartElement implements Handler.
func (t *Tree) StartElement(name xml.Name, attr []xml.Attr) {
	e := t.newElement()
	e.Name, e.Attr = name, attr
	if len(t.stack) > 0 {
		t.nodes = append(t.nodes, Node{Element: e})
	} else {
		t.Root = e
	}
	t.stack = append(t.stack, e)
	t.marks = append(t.marks, len(t.nodes))
}

// Text implements Handler.
func (t *Tree) Text(s string) {
	t.nodes = append(t.nodes, Node{Text: s})
}

// EndElement implements Handler.
func (t *Tree) EndElement() {
	e := t.stack[len(t.stack)-1]
	m := t.marks[len(t.marks)-1]
	t.stack = t.stack[:len(t.stack)-1]
	t.marks = t.marks[:len(t.marks)-1]
	if n := len(t.nodes) - m; n > 0 {
		if len(t.nslab) < n {
			t.nchunk = min(max(2*t.nchunk, 8), 128)
			t.nslab = make([]Node, max(n, t.nchunk))
		}
		e.Content = t.nslab[:n:n]
		t.nslab = t.nslab[n:]
		copy(e.Content, t.nodes[m:])
		clear(t.nodes[m:])
		t.nodes = t.nodes[:m]
	}
}
