package iq

import (
	"crypto/rand"
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
	encodeID(out, &raw)
}

// idAlphabet is base64url's ([A-Za-z0-9_-], RFC 4648 §5).
const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// encodeID writes raw into out as base64url without padding does
// (encoding/base64's RawURLEncoding), unrolled for these fixed sizes:
// a fifth of the instructions of the general encoder.
func encodeID(out *[idLen]byte, raw *[idBytes]byte) {
	for i := range idBytes / 3 {
		v := uint(raw[3*i])<<16 | uint(raw[3*i+1])<<8 | uint(raw[3*i+2])
		o := out[4*i : 4*i+4 : 4*i+4]
		o[0] = idAlphabet[v>>18&63]
		o[1] = idAlphabet[v>>12&63]
		o[2] = idAlphabet[v>>6&63]
		o[3] = idAlphabet[v&63]
	}
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
