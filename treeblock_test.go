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
		{"powers of two above", [3]int{9, 17, 33}, [3]int{16, 32, 64}, true},
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

// A peer that sends small trees of every shape makes every small block
// type there is, once: what reflect keeps of them is bounded.
func TestSmallBlockTypesBounded(t *testing.T) {
	sizes := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 16}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	made := 0
	for _, withIQ := range []bool{false, true} {
		for e := 1; e <= smallTree[0]; e++ {
			for _, n := range sizes {
				for _, a := range sizes {
					require.NotNil(t, smallSlot([3]int{e, n, a}, withIQ))
					treeBlockFor([3]int{e, n, a}, withIQ)
					made++
				}
			}
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d block types: heap %+d bytes (%d each)", made, grown, grown/int64(made))
	assert.Less(t, grown, int64(4<<20), "what every small block type holds")
	assert.Nil(t, smallSlot([3]int{9, 1, 1}, false), "more than 8 elements is not small")
	assert.Nil(t, smallSlot([3]int{1, 32, 1}, false))
	assert.Nil(t, smallSlot([3]int{1, 1, 32}, false))
}
