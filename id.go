package iq

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"unsafe"
)

// idBytes is the entropy in one generated id: 96 bits, 16 characters of
// base64url ([A-Za-z0-9_-]).
const idBytes = 12

// idPool amortises crypto/rand over many ids: one read fills the pool for
// 256 of them. Ids stay unpredictable, each is 96 fresh bits that were
// never handed out before.
var idPool struct {
	mu  sync.Mutex
	buf [idBytes * 256]byte
	off int
}

// NewID returns a fresh random id: 16 characters of [A-Za-z0-9_-] carrying
// 96 bits from crypto/rand. It is safe for concurrent use.
func NewID() string {
	var out [idLen]byte
	fillID(&out)
	return string(out[:])
}

// idLen is the length of an id NewID returns.
const idLen = 16

// fillID writes a fresh id, as NewID returns, into out.
func fillID(out *[idLen]byte) {
	var raw [idBytes]byte
	idPool.mu.Lock()
	if idPool.off == 0 || idPool.off == len(idPool.buf) {
		rand.Read(idPool.buf[:]) // never fails (crypto/rand, Go ≥ 1.24)
		idPool.off = 0
	}
	copy(raw[:], idPool.buf[idPool.off:])
	clear(idPool.buf[idPool.off : idPool.off+idBytes])
	idPool.off += idBytes
	idPool.mu.Unlock()
	base64.RawURLEncoding.Encode(out[:], raw[:])
}

// iqWithID is an IQ and the bytes of its generated id, in one
// allocation: a request the Caller gives an id costs one object, not
// two. The id's bytes are written once, before the string is made, and
// never again.
type iqWithID struct {
	iq IQ
	id [idLen]byte
}

// newIQWithID returns a copy of src with a fresh id (NewID's).
func newIQWithID(src *IQ) *IQ {
	r := &iqWithID{iq: *src}
	fillID(&r.id)
	r.iq.ID = unsafe.String(&r.id[0], idLen)
	return &r.iq
}
