package iq

import (
	"encoding/xml"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every block holds its arrays and its IQ apart from one another, inside
// one allocation, and what is stored in them survives the collector.
func TestTreeBlockLayout(t *testing.T) {
	for _, withIQ := range []bool{false, true} {
		for _, c := range [][3]int{{1, 0, 0}, {1, 1, 2}, {5, 8, 2}, {8, 16, 16}, {9, 9, 9}, {64, 128, 64}} {
			size, ok := blockSize(c)
			require.True(t, ok, "%v", c)
			b := treeBlockFor(size, withIQ)
			assert.Same(t, b, treeBlockFor(size, withIQ), "one type per size")
			e, n, a, q := b.alloc()
			require.Len(t, e, size[0])
			require.Len(t, n, size[1])
			require.Len(t, a, size[2])
			assert.Equal(t, withIQ, q != nil)
			end := uintptr(unsafe.Pointer(&e[0])) + b.typ.Size()
			var spans [][2]uintptr
			if len(n) > 0 {
				spans = append(spans, [2]uintptr{uintptr(unsafe.Pointer(&n[0])), uintptr(unsafe.Pointer(&n[0])) + uintptr(len(n))*unsafe.Sizeof(Node{})})
			}
			if len(a) > 0 {
				spans = append(spans, [2]uintptr{uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&a[0])) + uintptr(len(a))*unsafe.Sizeof(xml.Attr{})})
			}
			if q != nil {
				spans = append(spans, [2]uintptr{uintptr(unsafe.Pointer(q)), uintptr(unsafe.Pointer(q)) + unsafe.Sizeof(IQ{})})
			}
			last := uintptr(unsafe.Pointer(&e[0])) + uintptr(len(e))*unsafe.Sizeof(Element{})
			for _, s := range spans {
				assert.GreaterOrEqual(t, s[0], last, "%v: parts overlap", c)
				last = s[1]
			}
			assert.LessOrEqual(t, last, end, "%v: a part past the block", c)

			// Pointers into fresh memory, held only by the block.
			for i := range e {
				e[i].Name.Local = strings.Repeat("e", i+1)
			}
			for i := range n {
				n[i].Element = &e[i%len(e)]
				n[i].Text = strings.Repeat("n", i+1)
			}
			for i := range a {
				a[i].Value = strings.Repeat("a", i+1)
			}
			if q != nil {
				q.ID = strings.Repeat("q", 3)
			}
			runtime.GC()
			runtime.GC()
			for i := range n {
				assert.Equal(t, strings.Repeat("e", i%len(e)+1), n[i].Element.Name.Local)
				assert.Equal(t, strings.Repeat("n", i+1), n[i].Text)
			}
			for i := range a {
				assert.Equal(t, strings.Repeat("a", i+1), a[i].Value)
			}
			if q != nil {
				assert.Equal(t, "qqq", q.ID)
			}
		}
	}
}

func TestBlockSize(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    [3]int
		want [3]int
		ok   bool
	}{
		{"exact up to 8", [3]int{5, 8, 2}, [3]int{5, 8, 2}, true},
		{"12 and 16 above", [3]int{9, 13, 12}, [3]int{12, 16, 12}, true},
		{"powers of two above 16", [3]int{17, 33, 64}, [3]int{32, 64, 64}, true},
		{"the largest", [3]int{64, 128, 64}, [3]int{64, 128, 64}, true},
		{"too many elements", [3]int{65, 1, 1}, [3]int{}, false},
		{"too many nodes", [3]int{1, 129, 1}, [3]int{}, false},
		{"too many attributes", [3]int{1, 1, 65}, [3]int{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := blockSize(tc.c)
			assert.Equal(t, tc.ok, ok)
			if ok {
				assert.Equal(t, tc.want, got)
			}
		})
	}
}

// A peer that sends small trees of every shape makes every block type the
// builder uses, once: what reflect keeps of them is bounded.
func TestSmallBlockTypesBounded(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	made := map[*treeBlock]bool{}
	for _, withIQ := range []bool{false, true} {
		for e := 1; e <= smallTree[0]; e++ {
			for n := 0; n <= smallTree[1]; n++ {
				for a := 0; a <= smallTree[2]; a++ {
					size, ok := blockSize([3]int{e, n, a})
					require.True(t, ok)
					require.NotNil(t, smallSlot(size, withIQ), "%v", size)
					made[treeBlockFor(size, withIQ)] = true
				}
			}
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d block types: heap %+d bytes (%d each)", len(made), grown, grown/int64(len(made)))
	assert.Equal(t, 2*8*9*10, len(made), "block types a peer can make")

	// Each block is the size its tree needs, but for 9 to 12 attributes,
	// which take 12.
	for e := 1; e <= smallTree[0]; e++ {
		for n := 0; n <= smallTree[1]; n++ {
			for a := 0; a <= smallTree[2]; a++ {
				size, _ := blockSize([3]int{e, n, a})
				need := uintptr(e)*unsafe.Sizeof(Element{}) + uintptr(n)*unsafe.Sizeof(Node{}) +
					uintptr(a)*unsafe.Sizeof(xml.Attr{}) + unsafe.Sizeof(IQ{})
				if a > 8 {
					need += uintptr(12-a) * unsafe.Sizeof(xml.Attr{})
				}
				assert.Equal(t, need, treeBlockFor(size, true).typ.Size(), "%d, %d, %d", e, n, a)
			}
		}
	}
	assert.Less(t, grown, int64(2<<20), "what every small block type holds")
	assert.Nil(t, smallSlot([3]int{9, 1, 1}, false), "more than 8 elements is not small")
	assert.Nil(t, smallSlot([3]int{1, 32, 1}, false))
	assert.Nil(t, smallSlot([3]int{1, 1, 32}, false))
}
