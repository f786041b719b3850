package tlsconf

import (
	"crypto/x509"
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
const acceptedTTL = 10 * time.Minute

// acceptedChains remembers, per identity.ChainKey of the certificates
// presented, what Verify accepted (at most identity.MemoSize entries).
type acceptedChains struct {
	memo identity.Memo[*acceptedEntry]
}

type acceptedEntry struct {
	id *identity.Identity
	// from and until bound the time at which every certificate of every
	// verified chain is valid; added starts the TTL.
	from, until, added time.Time
}

// get returns the identity accepted for key if it may be answered at t.
func (a *acceptedChains) get(key [32]byte, t time.Time) *identity.Identity {
	e, _ := a.memo.Get(key)
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
	a.memo.Put(key, e)
}
