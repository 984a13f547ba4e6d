package iq

import (
	"encoding/xml"
	"sync"
	"sync/atomic"
	"unsafe"
)

// treeMem is the memory of one big element tree (one past the small
// trees' few elements, see Grow) that a builder reading stanzas built:
// its elements, content nodes and attributes, in three arrays that
// IQ.Release gives back for a later tree to reuse. The character data and
// attribute values are not in it: they are one string of their own, which
// stays valid after Release, as strings do.
type treeMem struct {
	e []Element
	n []Node
	a []xml.Attr
	// owner is the IQ the tree was read as while it is in use, nil once
	// given back: only a Release through that very IQ gives it back, and
	// only once (a copy of the IQ, or a second Release, finds another
	// owner or none).
	owner atomic.Pointer[IQ]
}

// treeMems holds the trees given back. A sync.Pool, so that what a burst
// of big stanzas leaves is dropped by the collector's next cycles.
var treeMems sync.Pool

// maxPooledTree is the most memory a tree given back may hold to be kept
// for reuse: a larger one (a stanza near the size limit) is left to the
// collector, so that one hostile stanza does not stay in the pool.
const maxPooledTree = 4 << 20

// getTreeMem returns memory for a tree of that many elements, content
// nodes and attributes, given back by an earlier tree when there is one.
// An array far larger than the tree needs is not reused for it: a small
// stanza would otherwise pin, for as long as it is kept, what one big
// stanza once needed.
func getTreeMem(elements, nodes, attrs int) *treeMem {
	m, _ := treeMems.Get().(*treeMem)
	if m == nil {
		m = new(treeMem)
	}
	if cap(m.e) < elements || oversized(cap(m.e), elements) {
		m.e = make([]Element, elements)
	}
	if cap(m.n) < nodes || oversized(cap(m.n), nodes) {
		m.n = make([]Node, nodes)
	}
	if cap(m.a) < attrs || oversized(cap(m.a), attrs) {
		m.a = make([]xml.Attr, attrs)
	}
	return m
}

// oversized reports whether an array of c entries is too large to hold n:
// more than four times larger, and by more than a few hundred entries.
func oversized(c, n int) bool { return c > 4*n+256 }

// size is the memory m holds, in bytes.
func (m *treeMem) size() int {
	return cap(m.e)*int(unsafe.Sizeof(Element{})) + cap(m.n)*int(unsafe.Sizeof(Node{})) +
		cap(m.a)*int(unsafe.Sizeof(xml.Attr{}))
}

// Release sets iq's Payload and Error to nil (and drops the elements
// beside them) and gives the memory of the element tree they were read
// into back to the package, for a later stanza read from a stream to
// reuse. It spares the collector the tree: for payloads of kilobytes, the
// larger part of what reading a stanza allocates. Release is for a
// program that wants that and can keep to its rule: after Release,
// nothing of the tree may be used, through any pointer or slice taken
// from it (elements, their Attr and Content, Root of the builder that
// read it); a later stanza overwrites them. The strings the tree held
// (names, attribute values, character data) stay valid, and so does the
// StanzaError read from iq (Caller.Request's error for it), whose App is
// copied out of the tree. The race detector reports a tree used after its
// Release as a race with the goroutine that released or reuses it.
//
// The memory given back is what Release can give back safely: the trees
// of the IQs that package stream read for an Endpoint made WithTreeReuse,
// of more than a few elements, through the very pointer the stream
// delivered, once. For any other IQ (one built by the program, read by
// xml.Unmarshal or IQFromElement, a copy, one released already) Release
// only sets the fields to nil. It must not run while another goroutine
// uses iq.
//
// A Callee made WithTreeReuse releases the requests its handlers answer,
// GetAs and SetAs the responses they decode; a program releases the
// responses it is done with.
func (iq *IQ) Release() {
	m := iq.tree
	if iq.Error != nil && iq.Error.App != nil && iq.ownsTree() {
		// The error Caller.Request returned for iq is this StanzaError:
		// it stays valid, its App copied out of the tree.
		iq.Error.App = iq.Error.App.Copy()
	}
	iq.tree, iq.Payload, iq.Error, iq.extra = nil, nil, nil, nil
	if m == nil || !m.owner.CompareAndSwap(iq, nil) {
		return
	}
	if m.size() > maxPooledTree {
		return
	}
	// Nothing of this tree is kept alive through the pool.
	clear(m.e[:cap(m.e)])
	clear(m.n[:cap(m.n)])
	clear(m.a[:cap(m.a)])
	treeMems.Put(m)
}

// ownsTree reports whether iq holds a tree that Release would give back.
func (iq *IQ) ownsTree() bool {
	m := iq.tree
	return m != nil && m.owner.Load() == iq
}

// keepTree makes iq's tree one that Release will not give back, without
// touching iq's fields: for a request whose handler runs on (Timeout)
// while its Callee goes on to release it. iq may be a copy of the IQ the
// stream delivered (a middleware may pass one on, as iqotel's does), so
// the tree is kept whoever owns it: at worst a tree is not reused.
func (iq *IQ) keepTree() {
	if m := iq.tree; m != nil {
		m.owner.Store(nil)
	}
}
