package iq

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
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
	var out [16]byte
	base64.RawURLEncoding.Encode(out[:], raw[:])
	return string(out[:])
}
