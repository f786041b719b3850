package revocation

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/gatehouse/gatehouse/internal/serial"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
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

// crlData is one parsed CRL. At parse time only its header is decoded
// (issuer, dates, extensions, signature): its entries are indexed by
// serial only after its signature verified with a known CA, so that a
// forged or runaway CRL costs its bytes and no more (DESIGN.md invariant 11).
type crlData struct {
	source string
	// header is the CRL without its entries; RawTBSRevocationList is the
	// whole signed part, so that CheckSignatureFrom checks the real thing.
	header                 *x509.RevocationList
	number                 *big.Int // nil if the CRL has none
	thisUpdate, nextUpdate time.Time
	rawIssuer, aki         []byte
	issuerName             string
	sum                    [32]byte

	mu  sync.Mutex // serializes signature checks and indexing
	der []byte     // the whole CRL until its entries are indexed; then nil
	// revoked maps the big-endian magnitude of a serial to its entry: one
	// map lookup per certificate. Nil until the CRL verified and was
	// indexed; never consulted before.
	revoked atomic.Pointer[map[string]revokedEntry]
	// verified maps an issuer certificate's DER to itself when the CRL's
	// signature verifies with it, to nil when it does not. Copied on
	// write, so that readers take no lock.
	verified atomic.Pointer[map[string]*x509.Certificate]
}

// parseCRL parses the header of a DER or PEM CRL and refuses what
// gatehouse cannot apply safely: an expired CRL, one from the future, one
// without nextUpdate, and delta or partitioned CRLs (they list only part of
// what is revoked). Its entries are left for index, after the signature
// has been checked.
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
	stripped, tbs, err := withoutEntries(der)
	if err != nil {
		return nil, fmt.Errorf("parse CRL: %w", err)
	}
	list, err := x509.ParseRevocationList(stripped)
	if err != nil {
		return nil, fmt.Errorf("parse CRL: %w", err)
	}
	list.RawTBSRevocationList = tbs // what the signature covers
	list.Raw = der
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
	return &crlData{
		source:     source,
		header:     list,
		number:     list.Number,
		thisUpdate: list.ThisUpdate,
		nextUpdate: list.NextUpdate,
		rawIssuer:  list.RawIssuer,
		aki:        list.AuthorityKeyId,
		issuerName: issuer,
		sum:        sha256.Sum256(der),
		der:        der,
	}, nil
}

// withoutEntries returns der (an RFC 5280 CertificateList) with its
// revokedCertificates left out, and the complete TBSCertList its
// signature covers. crypto/x509 then decodes the header without
// allocating one struct per entry; the layout is walked with cryptobyte,
// nothing is decoded by hand.
//
// The TBSCertList must hold exactly its fields, in order: version?,
// signature, issuer, thisUpdate, nextUpdate?, revokedCertificates?,
// [0] crlExtensions?. crypto/x509 ignores whatever follows the fields it
// knows; gatehouse refuses it, since with the entries left out a
// SEQUENCE after them would take their place.
func withoutEntries(der []byte) (stripped, tbs []byte, err error) {
	input := cryptobyte.String(der)
	var outer, tbsFull, tbsBody, sigAlg, sig cryptobyte.String
	if !input.ReadASN1(&outer, cbasn1.SEQUENCE) || !input.Empty() ||
		!outer.ReadASN1Element(&tbsFull, cbasn1.SEQUENCE) ||
		!outer.ReadASN1Element(&sigAlg, cbasn1.SEQUENCE) ||
		!outer.ReadASN1Element(&sig, cbasn1.BIT_STRING) || !outer.Empty() {
		return nil, nil, errors.New("malformed CertificateList")
	}
	body := tbsFull
	if !body.ReadASN1(&tbsBody, cbasn1.SEQUENCE) {
		return nil, nil, errors.New("malformed TBSCertList")
	}
	var kept [6]cryptobyte.String
	n := 0
	field := func(required bool, tags ...cbasn1.Tag) bool {
		for _, tag := range tags {
			if tbsBody.PeekASN1Tag(tag) {
				var el cryptobyte.String
				if !tbsBody.ReadASN1Element(&el, tag) {
					return false
				}
				kept[n] = el
				n++
				return true
			}
		}
		return !required
	}
	extensions := cbasn1.Tag(0).Constructed().ContextSpecific()
	ok := field(false, cbasn1.INTEGER) && // version
		field(true, cbasn1.SEQUENCE) && // signature
		field(true, cbasn1.SEQUENCE) && // issuer
		field(true, cbasn1.UTCTime, cbasn1.GeneralizedTime) && // thisUpdate
		field(false, cbasn1.UTCTime, cbasn1.GeneralizedTime) // nextUpdate
	if ok && tbsBody.PeekASN1Tag(cbasn1.SEQUENCE) {
		var entries cryptobyte.String
		ok = tbsBody.ReadASN1Element(&entries, cbasn1.SEQUENCE) // left out
	}
	ok = ok && field(false, extensions)
	if !ok {
		return nil, nil, errors.New("malformed TBSCertList")
	}
	if !tbsBody.Empty() {
		return nil, nil, errors.New("malformed TBSCertList: data after its last field")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, el := range kept[:n] {
				b.AddBytes(el)
			}
		})
		b.AddBytes(sigAlg)
		b.AddBytes(sig)
	})
	stripped, err = b.Bytes()
	if err != nil {
		return nil, nil, err
	}
	return stripped, tbsFull, nil
}

// checkSignature reports why the CRL was not issued by issuer, or nil:
// the names must be equal, the key identifiers must not contradict, and
// the signature must verify with issuer's key.
func (d *crlData) checkSignature(issuer *x509.Certificate) error {
	if !bytes.Equal(issuer.RawSubject, d.rawIssuer) {
		return fmt.Errorf("its issuer name is not %s", issuer.Subject)
	}
	if !d.akiMatches(issuer) {
		return fmt.Errorf("its authority key identifier %x is not the key identifier %x of %s",
			d.aki, issuer.SubjectKeyId, issuer.Subject)
	}
	return d.header.CheckSignatureFrom(issuer)
}

// index parses the CRL's entries into revoked, once. Call it only after
// the signature verified: before that, the entries are an attacker's.
func (d *crlData) index() error {
	if d.revoked.Load() != nil {
		return nil
	}
	list, err := x509.ParseRevocationList(d.der)
	if err != nil {
		return fmt.Errorf("parse CRL entries: %w", err)
	}
	m := make(map[string]revokedEntry, len(list.RevokedCertificateEntries))
	for _, e := range list.RevokedCertificateEntries {
		for _, ext := range e.Extensions {
			if ext.Critical {
				return fmt.Errorf("CRL of %s: entry %s has an unsupported critical extension %s (indirect CRLs are not supported)",
					d.issuerName, serial.Format(e.SerialNumber), ext.Id)
			}
		}
		if e.SerialNumber == nil || e.SerialNumber.Sign() < 0 || e.ReasonCode == 8 {
			continue // no certificate has a negative serial; removeFromCRL belongs to delta CRLs
		}
		m[string(e.SerialNumber.Bytes())] = revokedEntry{at: e.RevocationTime, reason: e.ReasonCode}
	}
	d.revoked.Store(&m)
	d.der = nil
	return nil
}

// entries returns the index; nil before the CRL verified.
func (d *crlData) entries() map[string]revokedEntry {
	if m := d.revoked.Load(); m != nil {
		return *m
	}
	return nil
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

// verifiedFor reports whether the CRL was issued by issuer (name, key
// identifier, signature) and is indexed. The answer is cached per issuer
// certificate: the first request of a client under a new issuer pays for
// one signature check, later ones for a map lookup.
func (c *Checker) verifiedFor(d *crlData, issuer *x509.Certificate) bool {
	if m := d.verified.Load(); m != nil {
		if v, hit := (*m)[string(issuer.Raw)]; hit {
			return v != nil
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if m := d.verified.Load(); m != nil {
		if v, hit := (*m)[string(issuer.Raw)]; hit {
			return v != nil
		}
	}
	err := d.checkSignature(issuer)
	if err == nil {
		err = d.index()
	}
	d.storeVerified(issuer, err == nil)
	if err != nil {
		c.refused.Add(1)
		c.log.Error("CRL: refused, not issued by the issuer in the client's chain; clients of this issuer get the unavailable policy until the source serves a genuine CRL",
			"source", d.source, "issuer", issuer.Subject.String(), "err", err)
		return false
	}
	c.log.Info("CRL: signature verified against the issuer in the client's chain",
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

// failedOnly reports whether the CRL was checked against an issuer and
// never verified.
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

// errNoKnownIssuer is admit's answer for a CRL whose issuer is neither a
// trusted CA nor an intermediate seen before: it may be held pending.
var errNoKnownIssuer = errors.New("issuer not known yet")

// admit verifies a new CRL before anything holds it: it must be signed by
// a known CA of its issuer name (a trusted CA, or an intermediate an
// earlier CRL verified against), whatever its authority key identifier
// claims. A CRL naming a known CA that none of them signed is refused.
// One naming no known CA returns errNoKnownIssuer.
func (c *Checker) admit(d *crlData) error {
	var cands []*x509.Certificate
	seen := map[string]bool{}
	add := func(ca *x509.Certificate) {
		if bytes.Equal(ca.RawSubject, d.rawIssuer) && !seen[string(ca.Raw)] {
			seen[string(ca.Raw)] = true
			cands = append(cands, ca)
		}
	}
	for _, ca := range c.trustedCAs {
		add(ca)
	}
	for _, s := range c.sources {
		if cur := s.cur.Load(); cur != nil {
			for _, ca := range cur.knownIssuers() {
				add(ca)
			}
		}
	}
	for _, ca := range c.learnt {
		add(ca)
	}
	if len(cands) == 0 {
		return errNoKnownIssuer
	}
	var errs []error
	for _, ca := range cands {
		err := d.checkSignature(ca)
		if err == nil {
			d.storeVerified(ca, true)
			if err := d.index(); err != nil {
				return err
			}
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("CRL naming issuer %s is not signed by that CA (it matches no trusted CA): %w", d.issuerName, errors.Join(errs...))
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

// crlIndex is every CRL held, by the raw issuer name it carries. It is
// rebuilt when a source gets a new CRL and swapped atomically.
type crlIndex struct {
	// byIssuer holds the CRLs verified at load against a known CA.
	byIssuer map[string][]*crlData
	// pending holds CRLs whose issuer was not known when they were
	// loaded (an intermediate no client has presented yet). They decide
	// nothing until one verifies against the issuer in a verified client
	// chain; one that does not keeps that issuer's clients refused (the
	// unavailable policy), never unchecked.
	pending map[string][]*crlData
}

func (c *Checker) rebuildIndex() {
	ix := &crlIndex{byIssuer: make(map[string][]*crlData), pending: make(map[string][]*crlData)}
	for _, s := range c.sources {
		if d := s.cur.Load(); d != nil {
			k := string(d.rawIssuer)
			ix.byIssuer[k] = append(ix.byIssuer[k], d)
		}
		if d := s.pending.Load(); d != nil {
			k := string(d.rawIssuer)
			ix.pending[k] = append(ix.pending[k], d)
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
	crlBad                        // a CRL naming the issuer is not issued by it
)

type crlStatus struct {
	res   crlResult
	entry revokedEntry
	crl   *crlData
	// promote is set when a pending CRL verified and should be installed.
	promote bool
}

// status looks cert up in the CRLs of issuer, its issuer in a verified
// chain. A CRL applies only if its issuer name and key identifier match
// issuer and its signature verifies with issuer's key: a CRL never speaks
// for another CA. A stale CRL that lists the serial still counts as
// revoked: revocation is not undone by time passing.
func (c *Checker) status(ix *crlIndex, cert, issuer *x509.Certificate, now time.Time) crlStatus {
	// string(bytes) in an index expression: no allocation.
	verified, pending := ix.byIssuer[string(issuer.RawSubject)], ix.pending[string(issuer.RawSubject)]
	if len(verified) == 0 && len(pending) == 0 {
		return crlStatus{}
	}
	var buf [32]byte
	key := serialKey(cert.SerialNumber, &buf)
	res := crlUncovered
	for _, d := range verified {
		if !d.akiMatches(issuer) {
			continue // verified for another CA of the same name
		}
		if !c.verifiedFor(d, issuer) {
			if res == crlUncovered {
				res = crlBad
			}
			continue
		}
		if e, ok := d.entries()[string(key)]; ok {
			return crlStatus{res: crlRevoked, entry: e, crl: d}
		}
		res = freshness(res, d, now)
	}
	if res != crlUncovered && res != crlBad {
		return crlStatus{res: res}
	}
	promote := false
	for _, d := range pending {
		// A pending CRL naming this issuer must prove itself against it;
		// if it cannot, this issuer's clients are refused, not taken as
		// unchecked.
		if !c.verifiedFor(d, issuer) {
			if res == crlUncovered {
				res = crlBad
			}
			continue
		}
		promote = true
		if e, ok := d.entries()[string(key)]; ok {
			return crlStatus{res: crlRevoked, entry: e, crl: d, promote: true}
		}
		res = freshness(res, d, now)
	}
	return crlStatus{res: res, promote: promote}
}

// freshness folds a valid CRL that does not list the serial into res.
func freshness(res crlResult, d *crlData, now time.Time) crlResult {
	if now.Before(d.nextUpdate) {
		return crlGood
	}
	if res != crlGood {
		return crlStale
	}
	return res
}
