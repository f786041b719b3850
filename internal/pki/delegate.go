package pki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"time"
)

// DefaultOCSPSignerValidity is the life of the delegated OCSP signing
// certificate `ca serve` issues itself; it renews it at half-life.
const DefaultOCSPSignerValidity = 24 * time.Hour

// ProfileOCSPSigner is the inventory profile of delegated OCSP signing
// certificates: every certificate the CA signs is recorded.
const ProfileOCSPSigner = "ocsp-signer"

var (
	oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}
	asn1Null       = []byte{0x05, 0x00}
)

// ocspSigner is the key and certificate that sign OCSP responses: a
// delegated responder (RFC 6960 section 4.2.2.2) whose key exists only in
// this process's memory, so that the CA key (perhaps in an HSM) signs once
// a renewal instead of once an answer.
type ocspSigner struct {
	cert    *x509.Certificate
	key     crypto.Signer
	keyHash []byte // SHA-1 of the signer's public key: the ResponderID
	sigAlg  pkix.AlgorithmIdentifier
	sigHash crypto.Hash
}

// newOCSPSigner issues a fresh OCSP signing certificate valid for life,
// signed by the issuing CA: id-kp-OCSPSigning, digitalSignature, and
// id-pkix-ocsp-nocheck (clients need not check the responder's own status,
// which its short life bounds instead). It is recorded in the inventory.
func (ca *CA) newOCSPSigner(ctx context.Context, life time.Duration) (*ocspSigner, error) {
	caKey, err := ca.signer()
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := ca.now()
	notAfter := now.Add(life)
	if notAfter.After(ca.issuer.NotAfter) {
		notAfter = ca.issuer.NotAfter
	}
	sn, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: ca.issuer.Subject.CommonName + " OCSP Responder"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		BasicConstraintsValid: true,
		ExtraExtensions:       []pkix.Extension{{Id: oidOCSPNoCheck, Value: asn1Null}},
	}
	cert, err := createCert(tmpl, ca.issuer, key.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("issue OCSP signing certificate: %w", err)
	}
	if err := ca.store.Insert(ctx, recordOf(cert, ProfileOCSPSigner, now)); err != nil {
		return nil, fmt.Errorf("record OCSP signing certificate: %w", err)
	}
	s := &ocspSigner{cert: cert, key: key}
	if s.sigAlg, s.sigHash, err = signatureAlgorithm(key.Public()); err != nil {
		return nil, err
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, err
	}
	sum := sha1.Sum(spki.PublicKey.RightAlign())
	s.keyHash = sum[:]
	return s, nil
}

// Delegate makes r sign with a delegated OCSP signing certificate of the
// given life (DefaultOCSPSignerValidity if zero), issuing one now, and
// renewing it whenever RenewSigner is called past its half-life.
func (r *Responder) Delegate(ctx context.Context, life time.Duration) error {
	if life <= 0 {
		life = DefaultOCSPSignerValidity
	}
	if life < 2*time.Duration(r.ca.settings.OCSPValidity) {
		return fmt.Errorf("OCSP signer validity %s must be at least twice the OCSP response validity %s",
			life, time.Duration(r.ca.settings.OCSPValidity))
	}
	r.signerLife = life
	return r.renewSigner(ctx, true)
}

// RenewSigner issues a new delegated signing certificate when the current
// one is past half its life; answers cached under the old one stay valid,
// as they end before it does. It does nothing without Delegate.
func (r *Responder) RenewSigner(ctx context.Context) error { return r.renewSigner(ctx, false) }

func (r *Responder) renewSigner(ctx context.Context, force bool) error {
	if r.signerLife == 0 {
		return nil
	}
	if cur := r.delegate.Load(); !force && cur != nil {
		c := cur.cert
		if r.ca.now().Before(c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) / 2)) {
			return nil
		}
	}
	s, err := r.ca.newOCSPSigner(ctx, r.signerLife)
	if err != nil {
		return fmt.Errorf("renew OCSP signer: %w", err)
	}
	r.delegate.Store(s)
	return nil
}

// SignerCert is the delegated OCSP signing certificate in use, or nil when
// responses are signed by the issuing CA itself.
func (r *Responder) SignerCert() *x509.Certificate {
	if s := r.delegate.Load(); s != nil {
		return s.cert
	}
	return nil
}
