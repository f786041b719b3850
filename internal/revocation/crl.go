package revocation

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"
)

// clockSkew is how far in the future a thisUpdate may lie and still be
// accepted: the CA's clock and ours are never exactly in step.
const clockSkew = 5 * time.Minute

// maxVerifiedIssuers bounds the per-CRL cache of issuer certificates its
// signature was checked against. Real deployments have one or two (a CA
// certificate and its renewal); the bound only guards memory.
const maxVerifiedIssuers = 16

var (
	oidDeltaCRLIndicator        = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidIssuingDistributionPoint = asn1.ObjectIdentifier{2, 5, 29, 28}
)

type revokedEntry struct {
	at     time.Time
	reason int
}

// crlData is one parsed CRL, indexed by serial. It is immutable except for
// verified, the cache of signature checks against issuer certificates.
type crlData struct {
	source                 string
	list                   *x509.RevocationList // without its entries; kept to check the signature
	number                 *big.Int             // nil if the CRL has none
	thisUpdate, nextUpdate time.Time
	rawIssuer, aki         []byte
	issuerName             string
	sum                    [32]byte
	// revoked maps the big-endian magnitude of a serial to its entry:
	// one map lookup per certificate.
	revoked map[string]revokedEntry

	mu sync.Mutex // serializes writers of verified
	// verified maps an issuer certificate's DER to itself when the CRL's
	// signature verifies with it, to nil when it does not. Copied on
	// write, so that readers take no lock.
	verified atomic.Pointer[map[string]*x509.Certificate]
}

// parseCRL parses a DER or PEM CRL and refuses what gatehouse cannot apply
// safely: an expired CRL, one from the future, one without nextUpdate, and
// delta or partitioned CRLs (they list only part of what is revoked).
func parseCRL(source string, data []byte, now time.Time) (*crlData, error) {
	der := data
	if bytes.Contains(data, []byte("-----BEGIN")) {
		der = nil
		for rest := data; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			if b.Type == "X509 CRL" {
				der = b.Bytes
				break
			}
		}
		if der == nil {
			return nil, errors.New("parse CRL: no PEM block of type X509 CRL")
		}
	}
	list, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("parse CRL: %w", err)
	}
	issuer := list.Issuer.String()
	switch {
	case list.NextUpdate.IsZero():
		return nil, fmt.Errorf("CRL of %s has no nextUpdate (RFC 5280 requires one)", issuer)
	case !now.Before(list.NextUpdate):
		return nil, fmt.Errorf("CRL of %s expired: its nextUpdate %s has passed", issuer, list.NextUpdate.UTC().Format(time.RFC3339))
	case list.ThisUpdate.After(now.Add(clockSkew)):
		return nil, fmt.Errorf("CRL of %s is from the future: thisUpdate %s", issuer, list.ThisUpdate.UTC().Format(time.RFC3339))
	}
	for _, ext := range list.Extensions {
		if ext.Id.Equal(oidDeltaCRLIndicator) || ext.Id.Equal(oidIssuingDistributionPoint) {
			return nil, fmt.Errorf("CRL of %s is a delta or partitioned CRL (extension %s), which gatehouse does not support", issuer, ext.Id)
		}
		if ext.Critical {
			return nil, fmt.Errorf("CRL of %s has an unsupported critical extension %s", issuer, ext.Id)
		}
	}
	d := &crlData{
		source:     source,
		list:       list,
		number:     list.Number,
		thisUpdate: list.ThisUpdate,
		nextUpdate: list.NextUpdate,
		rawIssuer:  list.RawIssuer,
		aki:        list.AuthorityKeyId,
		issuerName: issuer,
		sum:        sha256.Sum256(der),
		revoked:    make(map[string]revokedEntry, len(list.RevokedCertificateEntries)),
	}
	for _, e := range list.RevokedCertificateEntries {
		for _, ext := range e.Extensions {
			if ext.Critical {
				return nil, fmt.Errorf("CRL of %s: entry %s has an unsupported critical extension %s (indirect CRLs are not supported)",
					issuer, e.SerialNumber.Text(16), ext.Id)
			}
		}
		if e.SerialNumber == nil || e.SerialNumber.Sign() < 0 || e.ReasonCode == 8 {
			continue // no certificate has a negative serial; removeFromCRL belongs to delta CRLs
		}
		d.revoked[string(e.SerialNumber.Bytes())] = revokedEntry{at: e.RevocationTime, reason: e.ReasonCode}
	}
	list.RevokedCertificateEntries = nil // indexed above; the map is what lookups use
	return d, nil
}

// serialKey returns the key of serial in crlData.revoked, in buf when it
// fits so that the lookup does not allocate.
func serialKey(serial *big.Int, buf *[32]byte) []byte {
	n := (serial.BitLen() + 7) / 8
	if n > len(buf) {
		return serial.Bytes()
	}
	return serial.FillBytes(buf[:n])
}

// akiMatches reports whether the CRL may have been issued by issuer,
// judging by key identifiers (the names are compared by the index).
func (d *crlData) akiMatches(issuer *x509.Certificate) bool {
	return len(d.aki) == 0 || len(issuer.SubjectKeyId) == 0 || bytes.Equal(d.aki, issuer.SubjectKeyId)
}

func (d *crlData) sameIssuer(o *crlData) bool {
	return bytes.Equal(d.rawIssuer, o.rawIssuer) && bytes.Equal(d.aki, o.aki)
}

// verifiedFor reports whether the CRL's signature verifies with issuer's
// key. The answer is cached per issuer certificate: the first request of a
// client under a new issuer pays for one signature check, later ones for a
// map lookup.
func (d *crlData) verifiedFor(log *slog.Logger, issuer *x509.Certificate) bool {
	if m := d.verified.Load(); m != nil {
		if c, hit := (*m)[string(issuer.Raw)]; hit {
			return c != nil
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if m := d.verified.Load(); m != nil {
		if c, hit := (*m)[string(issuer.Raw)]; hit {
			return c != nil
		}
	}
	err := d.list.CheckSignatureFrom(issuer)
	d.storeVerified(issuer, err == nil)
	if err != nil {
		log.Error("CRL: not signed by the issuer in the client's chain; clients of this issuer get the unavailable policy",
			"source", d.source, "issuer", issuer.Subject.String(), "err", err)
		return false
	}
	log.Info("CRL: signature verified against the issuer in the client's chain",
		"source", d.source, "issuer", issuer.Subject.String(), "crl_number", numberString(d.number))
	return true
}

// storeVerified records a signature check; d.mu must be held or d not yet
// shared.
func (d *crlData) storeVerified(issuer *x509.Certificate, ok bool) {
	m := make(map[string]*x509.Certificate)
	if old := d.verified.Load(); old != nil && len(*old) < maxVerifiedIssuers {
		for k, v := range *old {
			m[k] = v
		}
	}
	if ok {
		m[string(issuer.Raw)] = issuer
	} else {
		m[string(issuer.Raw)] = nil
	}
	d.verified.Store(&m)
}

// failedOnly reports whether every signature check of the CRL failed.
func (d *crlData) failedOnly() bool {
	m := d.verified.Load()
	if m == nil || len(*m) == 0 {
		return false
	}
	for _, c := range *m {
		if c != nil {
			return false
		}
	}
	return true
}

// knownIssuers returns the issuer certificates the CRL verified with.
func (d *crlData) knownIssuers() []*x509.Certificate {
	var out []*x509.Certificate
	if m := d.verified.Load(); m != nil {
		for _, c := range *m {
			if c != nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// verifyAtLoad checks a new CRL's signature against every candidate
// issuer known now: the trusted CAs with its issuer name and key
// identifier, and the issuers the source's current CRL was verified with
// (intermediates learnt from client chains). With no candidate, the CRL is
// for an intermediate not seen yet: its signature is checked on first use.
func (c *Checker) verifyAtLoad(d *crlData, cur *crlData) error {
	var cands []*x509.Certificate
	add := func(ca *x509.Certificate) {
		if !bytes.Equal(ca.RawSubject, d.rawIssuer) || !d.akiMatches(ca) {
			return
		}
		for _, x := range cands {
			if bytes.Equal(x.Raw, ca.Raw) {
				return
			}
		}
		cands = append(cands, ca)
	}
	for _, ca := range c.trustedCAs {
		add(ca)
	}
	if cur != nil {
		for _, ca := range cur.knownIssuers() {
			add(ca)
		}
	}
	if len(cands) == 0 {
		c.log.Info("CRL: issuer is not a trusted CA; its signature will be checked against the intermediate in client chains",
			"source", d.source, "issuer", d.issuerName)
		return nil
	}
	var lastErr error
	ok := false
	for _, ca := range cands {
		err := d.list.CheckSignatureFrom(ca)
		d.storeVerified(ca, err == nil)
		if err == nil {
			ok = true
		} else {
			lastErr = err
		}
	}
	if !ok {
		return fmt.Errorf("CRL naming issuer %s is not signed by that CA: %w", d.issuerName, lastErr)
	}
	return nil
}

// replaces decides whether d may replace cur, the CRL a source holds.
// Only a higher CRL number replaces (without numbers: a later
// thisUpdate); on refresh, the issuer must stay the same, so that a
// source cannot be turned into another CA's CRL and leave its own CA's
// clients unchecked. initial allows a new configuration to change it.
func replaces(cur, d *crlData, initial bool) (ok bool, level slog.Level, why string) {
	switch {
	case cur == nil:
		return true, 0, ""
	case cur.sum == d.sum:
		return false, slog.LevelDebug, "unchanged"
	case cur.failedOnly():
		// The CRL held proved not to be signed by its issuer: its number
		// is no reference (a forgery with a huge one would otherwise block
		// every genuine CRL).
		return true, 0, ""
	case !cur.sameIssuer(d):
		if initial {
			return true, 0, ""
		}
		return false, slog.LevelWarn, "issued by another CA than the CRL held (" + cur.issuerName + "); refused, reload the configuration to change a source's CA"
	case cur.number != nil && d.number != nil:
		switch d.number.Cmp(cur.number) {
		case 1:
			return true, 0, ""
		case 0:
			return false, slog.LevelWarn, "same CRL number as the CRL held but different content; kept the one held"
		}
		return false, slog.LevelWarn, "lower CRL number than the CRL held; refused"
	case d.thisUpdate.After(cur.thisUpdate):
		return true, 0, ""
	}
	return false, slog.LevelWarn, "not newer than the CRL held (no CRL number to compare, and no later thisUpdate); refused"
}

func numberString(n *big.Int) string {
	if n == nil {
		return "none"
	}
	return n.String()
}

// crlIndex is every current CRL by the raw issuer name it carries. It is
// rebuilt when a source gets a new CRL and swapped atomically.
type crlIndex struct {
	byIssuer map[string][]*crlData
}

func (c *Checker) rebuildIndex() {
	ix := &crlIndex{byIssuer: make(map[string][]*crlData)}
	for _, s := range c.sources {
		if d := s.cur.Load(); d != nil {
			k := string(d.rawIssuer)
			ix.byIssuer[k] = append(ix.byIssuer[k], d)
		}
	}
	c.crls.Store(ix)
}

type crlResult uint8

const (
	crlUncovered crlResult = iota // no CRL for this issuer
	crlGood                       // a valid CRL of the issuer does not list it
	crlRevoked                    // a CRL of the issuer lists it
	crlStale                      // the issuer's CRLs are past their nextUpdate
	crlBad                        // a CRL naming the issuer does not verify with its key
)

type crlStatus struct {
	res   crlResult
	entry revokedEntry
	crl   *crlData
}

// status looks cert up in the CRLs of issuer, its issuer in a verified
// chain. A CRL applies only if its issuer name and key identifier match
// issuer and its signature verifies with issuer's key: a CRL never speaks
// for another CA. A stale CRL that lists the serial still counts as
// revoked: revocation is not undone by time passing.
func (ix *crlIndex) status(log *slog.Logger, cert, issuer *x509.Certificate, now time.Time) crlStatus {
	cands := ix.byIssuer[string(issuer.RawSubject)] // string(bytes) in an index: no allocation
	if len(cands) == 0 {
		return crlStatus{}
	}
	var buf [32]byte
	key := serialKey(cert.SerialNumber, &buf)
	res := crlUncovered
	for _, d := range cands {
		if !d.akiMatches(issuer) {
			continue
		}
		if !d.verifiedFor(log, issuer) {
			if res == crlUncovered {
				res = crlBad
			}
			continue
		}
		if e, ok := d.revoked[string(key)]; ok {
			return crlStatus{res: crlRevoked, entry: e, crl: d}
		}
		if now.Before(d.nextUpdate) {
			res = crlGood
		} else if res != crlGood {
			res = crlStale
		}
	}
	return crlStatus{res: res}
}
