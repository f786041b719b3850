package revocation

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/serial"
	"golang.org/x/crypto/ocsp"
)

const (
	// ocspRetryAfter is how long a failed OCSP query is remembered before
	// the responder is asked again: a responder that is down costs one
	// timeout per certificate per interval, not one per handshake.
	ocspRetryAfter = 5 * time.Second
	// ocspDefaultTTL is how long an answer without nextUpdate is used.
	ocspDefaultTTL = 5 * time.Minute
	// ocspMaxTTL caps how long any answer is used, whatever its
	// nextUpdate says.
	ocspMaxTTL = 24 * time.Hour
	// maxOCSPEntries bounds the cache; when full and nothing has expired,
	// it is emptied.
	maxOCSPEntries = 100_000
)

type ocspStatus uint8

const (
	ocspFailed ocspStatus = iota // no usable answer: down, slow, unknown, bad
	ocspGood
	ocspRevoked
)

// ocspEntry is the cached outcome of one OCSP query. Immutable once
// cached, except for the refreshing flag.
type ocspEntry struct {
	status    ocspStatus
	revokedAt time.Time
	reason    int
	detail    string // why the query failed
	responder string
	// expires is when the entry stops being used: the answer's nextUpdate
	// (capped), or ocspRetryAfter after a failure.
	expires time.Time
	// refreshAt is when a Check that uses the entry starts a background
	// query, so that a certificate in use never waits for its responder.
	refreshAt  time.Time
	refreshing atomic.Bool
}

func (e *ocspEntry) clone() *ocspEntry {
	return &ocspEntry{status: e.status, revokedAt: e.revokedAt, reason: e.reason, detail: e.detail,
		responder: e.responder, expires: e.expires, refreshAt: e.refreshAt}
}

// ocspCache maps a leaf's DER to its entry. The DER identifies the
// certificate and, through its signature, its issuer.
type ocspCache struct {
	mu sync.RWMutex
	m  map[string]*ocspEntry
}

func (oc *ocspCache) get(raw []byte) *ocspEntry {
	oc.mu.RLock()
	e := oc.m[string(raw)] // string(bytes) in an index: no allocation
	oc.mu.RUnlock()
	return e
}

func (oc *ocspCache) put(key string, e *ocspEntry, now time.Time) {
	oc.mu.Lock()
	defer oc.mu.Unlock()
	if _, ok := oc.m[key]; !ok && len(oc.m) >= maxOCSPEntries {
		for k, old := range oc.m {
			if !now.Before(old.expires) {
				delete(oc.m, k)
			}
		}
		if len(oc.m) >= maxOCSPEntries {
			clear(oc.m)
		}
	}
	oc.m[key] = e
}

// copyFrom takes over o's current answers (not its failures).
func (oc *ocspCache) copyFrom(o *ocspCache, now time.Time) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	oc.mu.Lock()
	defer oc.mu.Unlock()
	for k, e := range o.m {
		if e.status != ocspFailed && now.Before(e.expires) {
			oc.m[k] = e.clone()
		}
	}
}

// ocspLookup returns the OCSP status of cert, or nil when it names no
// responder (and none is configured). A cached status is returned at
// once; when it nears its end a background query renews it. Otherwise
// the responder is asked, once for all concurrent callers, and the caller
// waits until the answer, the OCSP timeout or its own ctx.
func (c *Checker) ocspLookup(ctx context.Context, cert, issuer *x509.Certificate, now time.Time) *ocspEntry {
	responder := c.responderFor(cert)
	if responder == "" {
		return nil
	}
	if e := c.ocsp.get(cert.Raw); e != nil && now.Before(e.expires) {
		if e.status != ocspFailed && !now.Before(e.refreshAt) && e.refreshing.CompareAndSwap(false, true) {
			c.refreshOCSP(e, cert, issuer, responder)
		}
		return e
	}
	ch := c.flight.DoChan(string(cert.Raw), func() (any, error) {
		return c.fetchOCSP(cert, issuer, responder), nil
	})
	select {
	case r := <-ch:
		return r.Val.(*ocspEntry)
	case <-ctx.Done():
		return &ocspEntry{status: ocspFailed, responder: responder, detail: "OCSP query abandoned: " + ctx.Err().Error()}
	}
}

// ocspCached is ocspLookup for a certificate whose CRL already decided:
// it never waits. A usable cached answer is returned (and renewed ahead of
// its end, as ocspLookup does); without one, a background query is
// started, at most one per certificate at a time, and nil is returned.
func (c *Checker) ocspCached(cert, issuer *x509.Certificate, now time.Time) *ocspEntry {
	responder := c.responderFor(cert)
	if responder == "" {
		return nil
	}
	if e := c.ocsp.get(cert.Raw); e != nil && now.Before(e.expires) {
		if e.status != ocspFailed && !now.Before(e.refreshAt) && e.refreshing.CompareAndSwap(false, true) {
			c.refreshOCSP(e, cert, issuer, responder)
		}
		if e.status == ocspFailed {
			return nil // the CRL decides; the failure is retried after ocspRetryAfter
		}
		return e
	}
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	key := string(cert.Raw)
	if c.closed || c.bgQueries[key] {
		return nil
	}
	c.bgQueries[key] = true
	c.wg.Go(func() {
		c.flight.Do(key, func() (any, error) {
			return c.fetchOCSP(cert, issuer, responder), nil
		})
		c.bgMu.Lock()
		delete(c.bgQueries, key)
		c.bgMu.Unlock()
	})
	return nil
}

// refreshOCSP renews e in the background; e stays in use meanwhile.
func (c *Checker) refreshOCSP(e *ocspEntry, cert, issuer *x509.Certificate, responder string) {
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	if c.closed {
		e.refreshing.Store(false)
		return
	}
	c.wg.Go(func() {
		defer e.refreshing.Store(false)
		c.flight.Do(string(cert.Raw), func() (any, error) {
			return c.fetchOCSP(cert, issuer, responder), nil
		})
	})
}

// fetchOCSP asks the responder about cert and caches the outcome. A
// failure does not displace a cached answer that is still valid: that one
// is kept, and asked about again after ocspRetryAfter.
func (c *Checker) fetchOCSP(cert, issuer *x509.Certificate, responder string) *ocspEntry {
	ctx, cancel := context.WithTimeout(c.bg, c.ocspTO)
	defer cancel()
	resp, err := queryOCSP(ctx, c.client, cert, issuer, responder, c.now)
	now := c.now()
	var e *ocspEntry
	switch {
	case err == nil:
		e = entryFromResponse(resp, responder, now)
	default:
		if old := c.ocsp.get(cert.Raw); old != nil && old.status != ocspFailed && now.Before(old.expires) {
			e = old.clone()
			e.refreshAt = now.Add(ocspRetryAfter)
			c.log.Warn("OCSP: refresh failed, keeping the cached answer until its nextUpdate",
				"subject", cert.Subject.String(), "serial", serial.Format(cert.SerialNumber), "responder", responder,
				"until", old.expires, "err", err)
		} else {
			e = &ocspEntry{status: ocspFailed, responder: responder, detail: err.Error(), expires: now.Add(ocspRetryAfter)}
			c.log.Warn("OCSP: no usable answer", "subject", cert.Subject.String(), "serial", serial.Format(cert.SerialNumber),
				"responder", responder, "err", err)
		}
	}
	c.ocsp.put(string(cert.Raw), e, now)
	return e
}

func entryFromResponse(resp *ocsp.Response, responder string, now time.Time) *ocspEntry {
	exp := resp.NextUpdate
	if exp.IsZero() {
		exp = now.Add(ocspDefaultTTL)
	}
	exp = minTime(exp, now.Add(ocspMaxTTL))
	e := &ocspEntry{status: ocspGood, responder: responder, expires: exp, refreshAt: now.Add(exp.Sub(now) / 2)}
	if resp.Status == ocsp.Revoked {
		e.status, e.revokedAt, e.reason = ocspRevoked, resp.RevokedAt, resp.RevocationReason
	}
	return e
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// queryOCSP asks responder about cert by HTTP POST and returns the
// verified answer, good or revoked; anything else is an error.
func queryOCSP(ctx context.Context, client *http.Client, cert, issuer *x509.Certificate, responder string, now func() time.Time) (*ocsp.Response, error) {
	// SHA-1 CertIDs are what every responder supports (RFC 5019); the
	// answer's integrity rests on its signature, not on this hash.
	req, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		return nil, fmt.Errorf("create OCSP request: %w", err)
	}
	body, err := postOCSP(ctx, client, responder, req)
	if err != nil {
		return nil, fmt.Errorf("query OCSP responder %s: %w", responder, err)
	}
	return verifyOCSP(body, cert, issuer, now())
}

// verifyOCSP parses an OCSP response and accepts it only if it is signed
// by issuer (or by a responder certificate issuer delegated OCSP signing
// to), is about this very certificate, is current at now, and says good
// or revoked.
func verifyOCSP(der []byte, cert, issuer *x509.Certificate, now time.Time) (*ocsp.Response, error) {
	resp, err := ocsp.ParseResponseForCert(der, cert, issuer)
	if err != nil {
		return nil, fmt.Errorf("verify OCSP response: %w", err)
	}
	if rc := resp.Certificate; rc != nil && !bytes.Equal(rc.Raw, issuer.Raw) {
		// x/crypto/ocsp checks that issuer signed the responder
		// certificate, not that it was made for OCSP: without this, any
		// certificate the CA issued (a client's!) could sign answers.
		if !slices.Contains(rc.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
			return nil, errors.New("verify OCSP response: responder certificate lacks the OCSPSigning extended key usage")
		}
		if now.Before(rc.NotBefore) || now.After(rc.NotAfter) {
			return nil, errors.New("verify OCSP response: responder certificate is not valid now")
		}
	}
	if err := checkCertID(der, cert, issuer); err != nil {
		return nil, fmt.Errorf("verify OCSP response: %w", err)
	}
	switch {
	case resp.ThisUpdate.After(now.Add(clockSkew)):
		return nil, fmt.Errorf("verify OCSP response: thisUpdate %s is in the future", resp.ThisUpdate.UTC().Format(time.RFC3339))
	case !resp.NextUpdate.IsZero() && !now.Before(resp.NextUpdate):
		return nil, fmt.Errorf("verify OCSP response: stale, nextUpdate %s has passed", resp.NextUpdate.UTC().Format(time.RFC3339))
	case resp.Status == ocsp.Unknown:
		return nil, errors.New("OCSP responder answered unknown")
	case resp.Status != ocsp.Good && resp.Status != ocsp.Revoked:
		return nil, fmt.Errorf("OCSP responder answered status %d", resp.Status)
	}
	return resp, nil
}

// The parts of an OCSP response (RFC 6960 section 4.2.1) that
// x/crypto/ocsp does not expose: the issuer hashes of each CertID.
// encoding/asn1 ignores the trailing fields left out here.
type (
	asn1CertID struct {
		HashAlgorithm pkix.AlgorithmIdentifier
		NameHash      []byte
		KeyHash       []byte
		SerialNumber  *big.Int
	}
	asn1Single struct {
		CertID asn1CertID
	}
	asn1ResponseData struct {
		Version     int `asn1:"optional,explicit,default:0,tag:0"`
		ResponderID asn1.RawValue
		ProducedAt  time.Time `asn1:"generalized"`
		Responses   []asn1Single
	}
	asn1Basic struct {
		TBS asn1ResponseData
	}
	asn1Response struct {
		Status asn1.Enumerated
		Bytes  struct {
			Type     asn1.ObjectIdentifier
			Response []byte
		} `asn1:"explicit,tag:0,optional"`
	}
)

var hashOIDs = map[string]crypto.Hash{
	"1.3.14.3.2.26":          crypto.SHA1,
	"2.16.840.1.101.3.4.2.1": crypto.SHA256,
	"2.16.840.1.101.3.4.2.2": crypto.SHA384,
	"2.16.840.1.101.3.4.2.3": crypto.SHA512,
}

// checkCertID checks that the answer about cert's serial names issuer
// (RFC 6960 section 3.2, item 1): the same serial under another CA is
// another certificate.
func checkCertID(der []byte, cert, issuer *x509.Certificate) error {
	var r asn1Response
	if _, err := asn1.Unmarshal(der, &r); err != nil {
		return err
	}
	var b asn1Basic
	if _, err := asn1.Unmarshal(r.Bytes.Response, &b); err != nil {
		return err
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return fmt.Errorf("issuer public key: %w", err)
	}
	for _, s := range b.TBS.Responses {
		if s.CertID.SerialNumber == nil || s.CertID.SerialNumber.Cmp(cert.SerialNumber) != 0 {
			continue
		}
		// The first answer for the serial is the one ParseResponseForCert used.
		h, ok := hashOIDs[s.CertID.HashAlgorithm.Algorithm.String()]
		if !ok || !h.Available() {
			return fmt.Errorf("unsupported CertID hash %s", s.CertID.HashAlgorithm.Algorithm)
		}
		nh, kh := h.New(), h.New()
		nh.Write(issuer.RawSubject)
		kh.Write(spki.PublicKey.RightAlign())
		if !bytes.Equal(nh.Sum(nil), s.CertID.NameHash) || !bytes.Equal(kh.Sum(nil), s.CertID.KeyHash) {
			return errors.New("the answer is about a certificate of another issuer")
		}
		return nil
	}
	return errors.New("no answer for the certificate's serial")
}
