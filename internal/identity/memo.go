package identity

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sync"
)

// ChainKey is the SHA-256 of certs, each DER length-prefixed, in order:
// two lists have the same key only if they hold the same certificates, byte
// for byte, in the same order.
func ChainKey(certs []*x509.Certificate) [32]byte {
	h := sha256.New()
	var n [4]byte
	for _, c := range certs {
		binary.BigEndian.PutUint32(n[:], uint32(len(c.Raw)))
		h.Write(n[:])
		h.Write(c.Raw)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// MemoSize bounds a Memo: when it holds that many entries, it starts over.
// What a Memo holds is remembered for many connections presenting the same
// certificates; the bound keeps a flood of distinct certificates from
// growing it (at a few KB per remembered chain, about 1024 x 5 KB).
const MemoSize = 1024

// Memo remembers values by ChainKey (or another SHA-256), bounded by
// MemoSize. The zero Memo is ready; it is safe for concurrent use.
type Memo[V any] struct {
	mu sync.Mutex
	m  map[[32]byte]V
}

// Get returns the value remembered for k.
func (m *Memo[V]) Get(k [32]byte) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[k]
	return v, ok
}

// Put remembers v for k.
func (m *Memo[V]) Put(k [32]byte, v V) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil || len(m.m) >= MemoSize {
		m.m = make(map[[32]byte]V)
	}
	m.m[k] = v
}

// Len is how many values are remembered.
func (m *Memo[V]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}
