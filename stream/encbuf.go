package stream

import (
	"math/bits"
	"sync"
)

// Encoding buffers. A stanza is encoded whole into one buffer before it
// is written. Buffers of up to smallBuf bytes share bufPool; bigger ones
// go to bigBufPools by size class, so that a stanza of hundreds of
// kilobytes is encoded into a buffer of about its size rather than one
// grown from 512 bytes by doubling (which copies and clears about twice
// the stanza's size and leaves as much garbage). Each Conn remembers the
// size of the last stanza it encoded (encHint) to pick the class to start
// from. A stanza that turns out much smaller than the buffer it was
// encoded into (the first small one after a big one) is copied into a
// buffer of its own size and the big one goes back at once (fitBuf), so
// that a stanza waiting in the write queue holds at most four times its
// size, or smallBuf. (Not twice: a stanza that ends just past its
// buffer's end doubles it, and copying that out every time would cost
// more than pooling saves.) A sync.Pool lets go of a buffer nobody took
// for two collections: a stream that stops sending big stanzas keeps none
// for long.
const (
	smallBuf  = 64 << 10
	maxBigBuf = 4 << 20 // larger buffers are not kept
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// bigBufPools hold buffers of capacity in (64 KiB, 128 KiB], (128 KiB,
// 256 KiB], ... (2 MiB, 4 MiB]: each class twice the one before.
var bigBufPools [6]sync.Pool

// bigClass returns the class of bigBufPools for a capacity over smallBuf,
// or -1 past maxBigBuf.
func bigClass(n int) int {
	if n > maxBigBuf {
		return -1
	}
	return bits.Len(uint(n-1)>>16) - 1
}

// getBuf returns an empty encoding buffer for a stanza of about hint
// bytes: from hint's class or the next one up (where one made for hint,
// with its room to spare, may have gone back), or, when neither has one,
// a new one of hint's size and an eighth more, rather than one grown to
// it by doubling.
func getBuf(hint int64) *[]byte {
	if hint > smallBuf {
		if k := bigClass(int(hint)); k >= 0 {
			for i := k; i <= k+1 && i < len(bigBufPools); i++ {
				if bp, ok := bigBufPools[i].Get().(*[]byte); ok {
					return bp
				}
			}
			b := make([]byte, 0, hint+hint/8)
			return &b
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

// fitBuf returns b, just encoded into bp, in a buffer of about its size:
// itself, or, when it holds less than a quarter of a big buffer, a copy
// in a buffer from the pool of its size, the big one going back at once.
func fitBuf(bp *[]byte, b []byte) (*[]byte, []byte) {
	if cap(b) <= smallBuf || 4*len(b) >= cap(b) {
		return bp, b
	}
	nbp := getBuf(int64(len(b)))
	nb := append((*nbp)[:0], b...)
	putBuf(bp, b)
	return nbp, nb
}

// encodeBuf returns an empty buffer to encode c's next stanza into.
func (c *Conn) encodeBuf() *[]byte { return getBuf(c.encHint.Load()) }

// encoded notes the size of b, a stanza just encoded into bp, for the
// next encodeBuf, and returns it in a buffer of about its size (fitBuf).
func (c *Conn) encoded(bp *[]byte, b []byte) (*[]byte, []byte) {
	c.noteEncoded(len(b))
	return fitBuf(bp, b)
}

// noteEncoded records the size of a stanza c encoded, for getBuf: it is
// written only when the stanza is big, or the first small one after a big
// one, so that a stream of small stanzas reads it alone.
func (c *Conn) noteEncoded(n int) {
	if n > smallBuf || c.encHint.Load() != 0 {
		if n <= smallBuf {
			n = 0
		}
		c.encHint.Store(int64(n))
	}
}
