package iq

import (
	"encoding/xml"
	"math/bits"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"
)

// treeBlock is a struct type holding arrays of elements, content nodes and
// attributes, and for a tree read as a stanza the IQ read from it, so that
// the tree takes one allocation rather than three or four, of the size it
// needs. The encoder of typed payloads builds each value's tree in one
// (structPlan.encodeTop); the builder each small tree it reads (Grow).
//
// Sizes are exact up to 8, then 12, 16 and powers of two, up to
// blockMax, so that few such types are ever made: reflect keeps them for
// good. The builder takes blocks only for trees within smallTree, where
// every size it needs is exact up to 8 and 12 holds 9 to 12 attributes:
// at most 8×9×10 types of each of the two kinds (with the IQ and
// without), whatever a peer sends. The encoder's larger ones come from
// the program's own types. A tree larger than a block takes separate
// arrays.
type treeBlock struct {
	size [3]int
	off  [4]uintptr // of the arrays, then of the IQ
	iq   bool
	typ  reflect.Type
}

// blockMax is the largest block's element, node and attribute counts.
var blockMax = [3]int{64, 128, 64}

// blockSize returns the size of the block that holds c elements, nodes
// and attributes, false when c is too large for one.
func blockSize(c [3]int) ([3]int, bool) {
	var size [3]int
	for i, n := range c {
		switch {
		case n > blockMax[i]:
			return size, false
		case n > 16:
			size[i] = 1 << bits.Len(uint(n-1))
		case n > 12:
			size[i] = 16
		case n > 8:
			size[i] = 12
		default:
			size[i] = n
		}
	}
	return size, true
}

// blockKey names a treeBlock type in treeBlocks.
type blockKey struct {
	size [3]int
	iq   bool
}

var (
	treeBlocks sync.Map // blockKey → *treeBlock
	// smallBlocks holds the block types of small trees (up to 8
	// elements, 16 nodes and 16 attributes), found by index rather than
	// through treeBlocks' hashing: the builder looks one up per stanza.
	smallBlocks [2][9][11][11]atomic.Pointer[treeBlock]
)

// smallIndex is the index in smallBlocks of a size from blockSize, false
// when it is too large.
func smallIndex(n int) (int, bool) {
	switch {
	case n <= 8:
		return n, true
	case n == 12:
		return 9, true
	case n == 16:
		return 10, true
	}
	return 0, false
}

// treeBlockFor returns the block type of size (as blockSize returns it),
// with room for an IQ when withIQ is set.
func treeBlockFor(size [3]int, withIQ bool) *treeBlock {
	slot := smallSlot(size, withIQ)
	if slot != nil {
		if b := slot.Load(); b != nil {
			return b
		}
	}
	key := blockKey{size, withIQ}
	b, ok := treeBlocks.Load(key)
	if !ok {
		b, _ = treeBlocks.LoadOrStore(key, newTreeBlock(size, withIQ))
	}
	if slot != nil {
		slot.Store(b.(*treeBlock))
	}
	return b.(*treeBlock)
}

// smallSlot is size's place in smallBlocks, nil when it has none.
func smallSlot(size [3]int, withIQ bool) *atomic.Pointer[treeBlock] {
	if size[0] > 8 {
		return nil
	}
	n, ok := smallIndex(size[1])
	if !ok {
		return nil
	}
	a, ok := smallIndex(size[2])
	if !ok {
		return nil
	}
	i := 0
	if withIQ {
		i = 1
	}
	return &smallBlocks[i][size[0]][n][a]
}

func newTreeBlock(size [3]int, withIQ bool) *treeBlock {
	fields := []reflect.StructField{
		{Name: "E", Type: reflect.ArrayOf(size[0], reflect.TypeFor[Element]())},
		{Name: "N", Type: reflect.ArrayOf(size[1], reflect.TypeFor[Node]())},
		{Name: "A", Type: reflect.ArrayOf(size[2], attrType)},
	}
	if withIQ {
		fields = append(fields, reflect.StructField{Name: "Q", Type: reflect.TypeFor[IQ]()})
	}
	b := &treeBlock{size: size, iq: withIQ, typ: reflect.StructOf(fields)}
	for i := range fields {
		b.off[i] = b.typ.Field(i).Offset
	}
	return b
}

// alloc allocates a block and returns its arrays, and its IQ when it has
// one. An empty array is returned nil: one at the very end of the block
// would point past the allocation.
func (b *treeBlock) alloc() ([]Element, []Node, []xml.Attr, *IQ) {
	base := reflect.New(b.typ).UnsafePointer()
	var (
		e  []Element
		n  []Node
		a  []xml.Attr
		iq *IQ
	)
	if b.size[0] > 0 {
		e = unsafe.Slice((*Element)(base), b.size[0])
	}
	if b.size[1] > 0 {
		n = unsafe.Slice((*Node)(unsafe.Add(base, b.off[1])), b.size[1])
	}
	if b.size[2] > 0 {
		a = unsafe.Slice((*xml.Attr)(unsafe.Add(base, b.off[2])), b.size[2])
	}
	if b.iq {
		iq = (*IQ)(unsafe.Add(base, b.off[3]))
	}
	return e, n, a, iq
}
