package tlsconf

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/identity"
)

// A fleet of clients reconnects with the same certificates all day, and
// verifying a chain costs an ECDSA (or RSA) verification per CA signature
// on every full handshake. What Verify decides about the same bytes under
// the same verifier (trust, chain building, usage, key policy) does not
// change; only validity depends on the time. So a verifier remembers the
// identities it accepted, keyed by the SHA-256 of exactly the certificates
// presented, and answers them again only while every certificate of the
// verified chains is within its validity, for at most acceptedTTL. A
// refusal is never remembered. What stays per handshake: crypto/tls's
// check of the client's CertificateVerify (possession of the key, which
// no cache can answer) and the revocation check, which runs after Verify
// on every handshake and request. A reload builds a new verifier, so
// nothing accepted under the old trust store survives it.
const (
	acceptedTTL = 10 * time.Minute
	// maxAccepted bounds the memory: when full, the cache starts over.
	maxAccepted = 4096
)

type acceptedChains struct {
	mu sync.Mutex
	m  map[[32]byte]*acceptedEntry
}

type acceptedEntry struct {
	id *identity.Identity
	// from and until bound the time at which every certificate of every
	// verified chain is valid; added starts the TTL.
	from, until, added time.Time
}

// acceptedKey is the SHA-256 of the presented certificates, each DER
// length-prefixed, in the order presented.
func acceptedKey(certs []*x509.Certificate) [32]byte {
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

// get returns the identity accepted for key if it may be answered at t.
func (a *acceptedChains) get(key [32]byte, t time.Time) *identity.Identity {
	a.mu.Lock()
	e := a.m[key]
	a.mu.Unlock()
	if e == nil || t.Before(e.from) || t.After(e.until) || t.Before(e.added) || t.Sub(e.added) > acceptedTTL {
		return nil // verified again in full, which names the reason if it fails
	}
	return e.id
}

// put remembers id, accepted at t with chains.
func (a *acceptedChains) put(key [32]byte, id *identity.Identity, chains [][]*x509.Certificate, t time.Time) {
	e := &acceptedEntry{id: id, added: t}
	first := true
	for _, chain := range chains {
		for _, c := range chain {
			if first || c.NotBefore.After(e.from) {
				e.from = c.NotBefore
			}
			if first || c.NotAfter.Before(e.until) {
				e.until = c.NotAfter
			}
			first = false
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil || len(a.m) >= maxAccepted {
		a.m = make(map[[32]byte]*acceptedEntry)
	}
	a.m[key] = e
}
