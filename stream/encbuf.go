package stream

import "sync"

// Encoding buffers. A stanza is encoded whole into one buffer before it
// is written. Buffers of up to smallBuf bytes share bufPool; bigger ones
// go to bigBufPools by size class, so that a stanza of hundreds of
// kilobytes is encoded into a buffer of about its size rather than one
// grown from 512 bytes by doubling (which copies and clears about twice
// the stanza's size and leaves as much garbage), while a small stanza
// never takes, and so never pins, a big buffer. Each Conn remembers the
// size of the last stanza it encoded (encHint) to pick the class to start
// from. A sync.Pool lets go of a buffer nobody took for two collections:
// a stream that stops sending big stanzas keeps none for long.
const (
	smallBuf  = 64 << 10
	maxBigBuf = 4 << 20 // larger buffers are not kept
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// bigBufPools hold buffers of capacity in (64 KiB, 256 KiB], (256 KiB,
// 1 MiB] and (1 MiB, 4 MiB].
var bigBufPools [3]sync.Pool

// bigClass returns the class of bigBufPools for a capacity over smallBuf,
// or -1 past maxBigBuf.
func bigClass(n int) int {
	switch {
	case n <= 256<<10:
		return 0
	case n <= 1<<20:
		return 1
	case n <= maxBigBuf:
		return 2
	}
	return -1
}

// getBuf returns an empty encoding buffer for a stanza of about hint
// bytes.
func getBuf(hint int64) *[]byte {
	if hint > smallBuf {
		if k := bigClass(int(hint)); k >= 0 {
			if bp, ok := bigBufPools[k].Get().(*[]byte); ok {
				return bp
			}
		}
	}
	return bufPool.Get().(*[]byte)
}

// putBuf returns an encoding buffer, b, which getBuf gave as bp, to the
// pool of its size, unless it grew past maxBigBuf. The write that used it
// is over: a batch copies what it writes.
func putBuf(bp *[]byte, b []byte) {
	*bp = b[:0]
	if cap(b) <= smallBuf {
		bufPool.Put(bp)
	} else if k := bigClass(cap(b)); k >= 0 {
		bigBufPools[k].Put(bp)
	}
}

// noteEncoded records the size of a stanza c encoded, for getBuf: it is
// written only when it says something new (a big stanza, or the first
// small one after it), so that a stream of small stanzas reads it alone.
func (c *Conn) noteEncoded(n int) {
	if n > smallBuf || c.encHint.Load() != 0 {
		if n <= smallBuf {
			n = 0
		}
		c.encHint.Store(int64(n))
	}
}
