package ratelimit

import "github.com/gatehouse/gatehouse/internal/identity"

// What a limit counts.
const (
	PerIdentity = "identity" // one bucket per client certificate identity
	PerIP       = "ip"       // one bucket per client IP address
	PerRoute    = "route"    // one bucket for the whole route
)

// How an identity becomes a key (Policy "by").
const (
	// BySPIFFEID keys by the certificate's SPIFFE ID (its spiffe:// URI
	// SAN) when it has one, else by issuer DN and serial number: renewed
	// SVIDs share a bucket, other certificates get one each. The default.
	BySPIFFEID = "spiffe_id"
	// BySubject keys by issuer DN and subject DN: every certificate issued
	// to the same subject by the same CA shares a bucket.
	BySubject = "subject"
	// ByFingerprint keys by the SHA-256 fingerprint of the certificate.
	ByFingerprint = "fingerprint"
)

// IdentityKeys are the keys of one identity, computed once per verified
// connection (the pipeline keeps them beside the identity) so that a check
// builds no strings.
type IdentityKeys struct {
	SPIFFEID, Subject, Fingerprint string
}

// KeysOf computes id's keys. Keys are prefixed by their kind so that two
// kinds can never collide. A nil id (no certificate) gets empty keys;
// callers key such requests by IP.
func KeysOf(id *identity.Identity) IdentityKeys {
	if id == nil {
		return IdentityKeys{}
	}
	k := IdentityKeys{
		// RFC 2253 escapes ';' inside DNs, so the first bare ';' splits.
		Subject:     "subject:" + id.Subject() + ";issuer:" + id.IssuerName(),
		Fingerprint: "sha256:" + id.Fingerprint(),
	}
	for _, u := range id.URIs() {
		if u.Scheme == "spiffe" {
			k.SPIFFEID = "spiffe:" + u.String()
			break
		}
	}
	if k.SPIFFEID == "" {
		k.SPIFFEID = "serial:" + id.Serial() + ";issuer:" + id.IssuerName()
	}
	return k
}

// Key returns the key for by (BySPIFFEID when by is empty).
func (k *IdentityKeys) Key(by string) string {
	switch by {
	case BySubject:
		return k.Subject
	case ByFingerprint:
		return k.Fingerprint
	}
	return k.SPIFFEID
}
