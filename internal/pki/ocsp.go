package pki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/gatehouse/gatehouse/internal/pki/store"
)

// The OCSP response structures of RFC 6960 section 4.2.1. gatehouse
// encodes responses itself because golang.org/x/crypto/ocsp.CreateResponse
// can neither sign with Ed25519 nor put the nonce in responseExtensions,
// where RFC 6960 (and openssl) expect it; requests are parsed with
// ocsp.ParseRequest.
type (
	ocspCertID struct {
		HashAlgorithm pkix.AlgorithmIdentifier
		NameHash      []byte
		IssuerKeyHash []byte
		SerialNumber  *big.Int
	}
	ocspRevokedInfo struct {
		RevocationTime time.Time       `asn1:"generalized"`
		Reason         asn1.Enumerated `asn1:"explicit,tag:0,optional"`
	}
	ocspSingleResponse struct {
		CertID     ocspCertID
		Good       asn1.Flag       `asn1:"tag:0,optional"`
		Revoked    ocspRevokedInfo `asn1:"tag:1,optional"`
		Unknown    asn1.Flag       `asn1:"tag:2,optional"`
		ThisUpdate time.Time       `asn1:"generalized"`
		NextUpdate time.Time       `asn1:"generalized,explicit,tag:0,optional"`
	}
	ocspResponseData struct {
		ResponderID asn1.RawValue
		ProducedAt  time.Time `asn1:"generalized"`
		Responses   []ocspSingleResponse
		Extensions  []pkix.Extension `asn1:"explicit,tag:1,optional"`
	}
	ocspBasicResponse struct {
		TBSResponseData    asn1.RawValue
		SignatureAlgorithm pkix.AlgorithmIdentifier
		Signature          asn1.BitString
		Certs              []asn1.RawValue `asn1:"explicit,tag:0,optional"`
	}
	ocspResponseBytes struct {
		ResponseType asn1.ObjectIdentifier
		Response     []byte
	}
	ocspResponse struct {
		Status   asn1.Enumerated
		Response ocspResponseBytes `asn1:"explicit,tag:0,optional"`
	}
	// ocspRequestASN1 is read only for what ocsp.ParseRequest drops: the
	// number of certificates asked about and the request extensions.
	ocspRequestASN1 struct {
		TBSRequest struct {
			Version       int           `asn1:"explicit,tag:0,default:0,optional"`
			RequestorName asn1.RawValue `asn1:"explicit,tag:1,optional"`
			RequestList   []asn1.RawValue
			Extensions    []pkix.Extension `asn1:"explicit,tag:2,optional"`
		}
		OptionalSignature asn1.RawValue `asn1:"explicit,tag:0,optional"`
	}
)

var (
	oidOCSPBasic = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}
	oidOCSPNonce = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}
	oidHash      = map[crypto.Hash]asn1.ObjectIdentifier{
		crypto.SHA1:   {1, 3, 14, 3, 2, 26},
		crypto.SHA256: {2, 16, 840, 1, 101, 3, 4, 2, 1},
		crypto.SHA384: {2, 16, 840, 1, 101, 3, 4, 2, 2},
		crypto.SHA512: {2, 16, 840, 1, 101, 3, 4, 2, 3},
	}
)

// ErrOCSPMalformed and ErrOCSPUnauthorized classify requests the responder
// refuses: the client gets the matching OCSP error status.
var (
	ErrOCSPMalformed    = errors.New("malformed OCSP request")
	ErrOCSPUnauthorized = errors.New("OCSP request for a certificate this CA did not issue")
)

// OCSPStatus is the answer about one certificate.
type OCSPStatus struct {
	// Status is ocsp.Good, ocsp.Revoked or ocsp.Unknown.
	Status int
	// RevokedAt and Reason are set when Status is ocsp.Revoked.
	RevokedAt time.Time
	Reason    Reason
}

// Responder answers OCSP requests for the CA's issuing certificate. It
// signs with the issuing CA's key, or after Delegate with a short-lived
// delegated responder certificate (RFC 6960 section 4.2.2.2), and caches each signed answer until the
// inventory changes (Invalidate) or half its validity has passed; a
// request with a nonce gets a freshly signed answer echoing the nonce.
// It is safe for concurrent use.
type Responder struct {
	ca          *CA
	keyHash     []byte // SHA-1 of the issuer's public key, the responder ID
	sigAlg      pkix.AlgorithmIdentifier
	sigHash     crypto.Hash
	issuerHashs map[crypto.Hash][2][]byte // name and key hash per algorithm

	mu    sync.RWMutex
	cache map[cacheKey]*cachedResponse
	// epoch counts Invalidate calls: an answer computed from a lookup
	// made before the last Invalidate is not cached (it may predate the
	// change that Invalidate was for).
	epoch uint64

	// delegate, when set, signs instead of the CA key (see delegate.go).
	delegate   atomic.Pointer[ocspSigner]
	signerLife time.Duration
}

type cacheKey struct {
	serial string
	hash   crypto.Hash
}

type cachedResponse struct {
	der                    []byte
	thisUpdate, nextUpdate time.Time
}

// maxCachedResponses bounds the cache; it is emptied when full.
const maxCachedResponses = 100_000

// NewResponder returns an OCSP responder for ca, which must hold its key.
func NewResponder(ca *CA) (*Responder, error) {
	key, err := ca.signer()
	if err != nil {
		return nil, fmt.Errorf("OCSP responder: %w", err)
	}
	r := &Responder{ca: ca, cache: map[cacheKey]*cachedResponse{}, issuerHashs: map[crypto.Hash][2][]byte{}}
	if r.sigAlg, r.sigHash, err = signatureAlgorithm(key.Public()); err != nil {
		return nil, fmt.Errorf("OCSP responder: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(ca.issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, fmt.Errorf("OCSP responder: %w", err)
	}
	for h := range oidHash {
		nh, kh := h.New(), h.New()
		nh.Write(ca.issuer.RawSubject)
		kh.Write(spki.PublicKey.RightAlign())
		r.issuerHashs[h] = [2][]byte{nh.Sum(nil), kh.Sum(nil)}
	}
	sum := sha1.Sum(spki.PublicKey.RightAlign())
	r.keyHash = sum[:]
	return r, nil
}

func signatureAlgorithm(pub crypto.PublicKey) (pkix.AlgorithmIdentifier, crypto.Hash, error) {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256():
			return pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}}, crypto.SHA256, nil
		case elliptic.P384():
			return pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}}, crypto.SHA384, nil
		}
	case *rsa.PublicKey:
		return pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11},
			Parameters: asn1.NullRawValue}, crypto.SHA256, nil
	case ed25519.PublicKey:
		return pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 3, 101, 112}}, 0, nil
	}
	return pkix.AlgorithmIdentifier{}, 0, fmt.Errorf("no OCSP signature algorithm for %s keys", keyTypeOf(pub))
}

// Invalidate drops every cached response; call it when the inventory
// changed.
func (r *Responder) Invalidate() {
	r.mu.Lock()
	clear(r.cache)
	r.epoch++
	r.mu.Unlock()
}

// Respond answers a DER-encoded OCSP request. The error, if any, wraps
// ErrOCSPMalformed or ErrOCSPUnauthorized (the answer is then the matching
// OCSP error response) or is internal (answer: internalError); it says why,
// for the log.
func (r *Responder) Respond(ctx context.Context, der []byte) ([]byte, error) {
	resp, _, err := r.respond(ctx, der)
	return resp, err
}

// respond is Respond, also saying whether the answer may be cached by
// HTTP caches (it echoes no nonce).
func (r *Responder) respond(ctx context.Context, der []byte) (resp []byte, cacheable bool, err error) {
	req, err := ocsp.ParseRequest(der)
	if err != nil {
		return ocsp.MalformedRequestErrorResponse, false, fmt.Errorf("%w: %v", ErrOCSPMalformed, err)
	}
	var raw ocspRequestASN1
	if _, err := asn1.Unmarshal(der, &raw); err != nil {
		return ocsp.MalformedRequestErrorResponse, false, fmt.Errorf("%w: %v", ErrOCSPMalformed, err)
	}
	if n := len(raw.TBSRequest.RequestList); n != 1 {
		return ocsp.MalformedRequestErrorResponse, false, fmt.Errorf("%w: %d certificates in one request (gatehouse answers one)", ErrOCSPMalformed, n)
	}
	var nonce *pkix.Extension
	for i, ext := range raw.TBSRequest.Extensions {
		if ext.Id.Equal(oidOCSPNonce) {
			// RFC 8954: the nonce is an OCTET STRING of 1 to 32 octets.
			var n []byte
			if rest, err := asn1.Unmarshal(ext.Value, &n); err != nil || len(rest) > 0 || len(n) < 1 || len(n) > 32 {
				return ocsp.MalformedRequestErrorResponse, false, fmt.Errorf("%w: nonce must be 1 to 32 octets", ErrOCSPMalformed)
			}
			nonce = &raw.TBSRequest.Extensions[i]
		}
	}
	hashes, ok := r.issuerHashs[req.HashAlgorithm]
	if !ok || string(hashes[0]) != string(req.IssuerNameHash) || string(hashes[1]) != string(req.IssuerKeyHash) {
		return ocsp.UnauthorizedErrorResponse, false, fmt.Errorf("%w (serial %x)", ErrOCSPUnauthorized, req.SerialNumber)
	}
	if req.SerialNumber == nil || req.SerialNumber.Sign() <= 0 {
		return ocsp.MalformedRequestErrorResponse, false, fmt.Errorf("%w: serial must be positive", ErrOCSPMalformed)
	}
	now := r.ca.now()
	key := cacheKey{serial: store.FormatSerial(req.SerialNumber), hash: req.HashAlgorithm}
	r.mu.RLock()
	c, epoch := r.cache[key], r.epoch
	r.mu.RUnlock()
	if nonce == nil && c != nil && now.Before(c.thisUpdate.Add(c.nextUpdate.Sub(c.thisUpdate)/2)) {
		return c.der, true, nil
	}
	st, err := r.ca.Status(ctx, req.SerialNumber)
	if err != nil {
		return ocsp.InternalErrorErrorResponse, false, err
	}
	thisUpdate := now.UTC().Truncate(time.Second)
	nextUpdate := thisUpdate.Add(time.Duration(r.ca.settings.OCSPValidity))
	if d := r.delegate.Load(); d != nil && nextUpdate.After(d.cert.NotAfter) {
		nextUpdate = d.cert.NotAfter // never outlast the signer's certificate
	}
	out, err := r.sign(req.SerialNumber, req.HashAlgorithm, st, thisUpdate, nextUpdate, nonce)
	if err != nil {
		return ocsp.InternalErrorErrorResponse, false, err
	}
	// Unknown serials are not cached: anyone can ask about any number.
	// Nor is an answer whose lookup came before an Invalidate: a
	// revocation committed while it was signed would stay hidden behind
	// it (TestOCSPAnswerDuringRevocation).
	if nonce == nil && st.Status != ocsp.Unknown {
		r.mu.Lock()
		if r.epoch == epoch {
			if len(r.cache) >= maxCachedResponses {
				clear(r.cache)
			}
			r.cache[key] = &cachedResponse{der: out, thisUpdate: thisUpdate, nextUpdate: nextUpdate}
		}
		r.mu.Unlock()
	}
	return out, nonce == nil, nil
}

// Status looks up a serial in the inventory: ocsp.Good, ocsp.Revoked or,
// for a serial this CA never issued, ocsp.Unknown.
func (ca *CA) Status(ctx context.Context, serial *big.Int) (OCSPStatus, error) {
	rec, err := ca.store.Get(ctx, store.FormatSerial(serial))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return OCSPStatus{Status: ocsp.Unknown}, nil
	case err != nil:
		return OCSPStatus{}, err
	case rec.Status == store.StatusRevoked:
		return OCSPStatus{Status: ocsp.Revoked, RevokedAt: rec.RevokedAt, Reason: Reason(rec.Reason)}, nil
	}
	return OCSPStatus{Status: ocsp.Good}, nil
}

func (r *Responder) sign(serial *big.Int, h crypto.Hash, st OCSPStatus, thisUpdate, nextUpdate time.Time, nonce *pkix.Extension) ([]byte, error) {
	hashes := r.issuerHashs[h]
	single := ocspSingleResponse{
		CertID: ocspCertID{
			HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oidHash[h], Parameters: asn1.NullRawValue},
			NameHash:      hashes[0],
			IssuerKeyHash: hashes[1],
			SerialNumber:  serial,
		},
		ThisUpdate: thisUpdate,
		NextUpdate: nextUpdate,
	}
	switch st.Status {
	case ocsp.Good:
		single.Good = true
	case ocsp.Revoked:
		single.Revoked = ocspRevokedInfo{RevocationTime: st.RevokedAt.UTC(), Reason: asn1.Enumerated(st.Reason)}
	default:
		single.Unknown = true
	}
	signer, signerKeyHash, sigAlg, sigHash := r.ca.key, r.keyHash, r.sigAlg, r.sigHash
	var certs []asn1.RawValue
	if d := r.delegate.Load(); d != nil {
		signer, signerKeyHash, sigAlg, sigHash = d.key, d.keyHash, d.sigAlg, d.sigHash
		certs = []asn1.RawValue{{FullBytes: d.cert.Raw}}
	}
	keyHash, err := asn1.Marshal(signerKeyHash)
	if err != nil {
		return nil, err
	}
	data := ocspResponseData{
		// ResponderID byKey: [2] EXPLICIT KeyHash, as RFC 5019 recommends.
		ResponderID: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, IsCompound: true, Bytes: keyHash},
		ProducedAt:  thisUpdate,
		Responses:   []ocspSingleResponse{single},
	}
	if nonce != nil {
		data.Extensions = []pkix.Extension{{Id: oidOCSPNonce, Value: nonce.Value}}
	}
	tbs, err := asn1.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encode OCSP response: %w", err)
	}
	msg := tbs
	if sigHash != 0 {
		d := sigHash.New()
		d.Write(tbs)
		msg = d.Sum(nil)
	}
	sig, err := signer.Sign(rand.Reader, msg, sigHash)
	if err != nil {
		return nil, fmt.Errorf("sign OCSP response: %w", err)
	}
	basic, err := asn1.Marshal(ocspBasicResponse{
		TBSResponseData:    asn1.RawValue{FullBytes: tbs},
		SignatureAlgorithm: sigAlg,
		Signature:          asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
		Certs:              certs,
	})
	if err != nil {
		return nil, fmt.Errorf("encode OCSP response: %w", err)
	}
	return asn1.Marshal(ocspResponse{Status: asn1.Enumerated(ocsp.Success),
		Response: ocspResponseBytes{ResponseType: oidOCSPBasic, Response: basic}})
}
