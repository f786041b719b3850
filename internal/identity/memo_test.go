package identity

import (
	"crypto/x509"
	"testing"
)

// ChainKey tells lists apart by content, order and where one certificate
// ends and the next begins.
func TestChainKey(t *testing.T) {
	c := func(raw string) *x509.Certificate { return &x509.Certificate{Raw: []byte(raw)} }
	keys := map[[32]byte]string{}
	for name, certs := range map[string][]*x509.Certificate{
		"ab,c": {c("ab"), c("c")},
		"a,bc": {c("a"), c("bc")},
		"c,ab": {c("c"), c("ab")},
		"abc":  {c("abc")},
		"none": nil,
	} {
		k := ChainKey(certs)
		if other, dup := keys[k]; dup {
			t.Fatalf("%s and %s have the same key", name, other)
		}
		keys[k] = name
	}
	if ChainKey([]*x509.Certificate{c("ab"), c("c")}) != ChainKey([]*x509.Certificate{c("ab"), c("c")}) {
		t.Fatal("the same list has two keys")
	}
}

// A Memo is bounded: when full it starts over.
func TestMemoBounded(t *testing.T) {
	var m Memo[int]
	for i := range MemoSize + 1 {
		var k [32]byte
		k[0], k[1] = byte(i), byte(i>>8)
		m.Put(k, i)
	}
	if n := m.Len(); n != 1 {
		t.Fatalf("%d entries after %d puts, want 1 (started over at %d)", n, MemoSize+1, MemoSize)
	}
	var last [32]byte
	n := MemoSize
	last[0], last[1] = byte(n), byte(n>>8)
	if v, ok := m.Get(last); !ok || v != MemoSize {
		t.Fatalf("last value: %d %v", v, ok)
	}
}
