package pki

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse/gatehouse/internal/pki/store"
)

// CRL is a signed certificate revocation list.
type CRL struct {
	Number     int64
	ThisUpdate time.Time
	NextUpdate time.Time
	// DER is the encoded CRL.
	DER []byte
}

// PEM is the CRL PEM-encoded ("X509 CRL").
func (c *CRL) PEM() []byte { return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: c.DER}) }

// UpdateCRL signs a new CRL listing every revoked certificate, with the
// next CRL number, stores it in the inventory and writes it to DIR/ca.crl
// (PEM). It is called after every revocation; run it periodically (ca serve
// does) so the CRL never passes its nextUpdate.
func (ca *CA) UpdateCRL(ctx context.Context) (*CRL, error) {
	key, err := ca.signer()
	if err != nil {
		return nil, fmt.Errorf("update CRL: %w", err)
	}
	now := ca.now()
	sc, err := ca.store.SignCRL(ctx, func(revoked []store.Record, number int64) (store.CRL, error) {
		tmpl := &x509.RevocationList{
			Number:     big.NewInt(number),
			ThisUpdate: now,
			NextUpdate: now.Add(time.Duration(ca.settings.CRLValidity)),
		}
		for _, r := range revoked {
			sn, err := store.ParseSerial(r.Serial)
			if err != nil {
				return store.CRL{}, err
			}
			tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
				SerialNumber:   sn,
				RevocationTime: r.RevokedAt,
				ReasonCode:     r.Reason,
			})
		}
		der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.issuer, key)
		if err != nil {
			return store.CRL{}, err
		}
		return store.CRL{ThisUpdate: tmpl.ThisUpdate, NextUpdate: tmpl.NextUpdate, DER: der}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("update CRL: %w", err)
	}
	crl := &CRL{Number: sc.Number, ThisUpdate: sc.ThisUpdate, NextUpdate: sc.NextUpdate, DER: sc.DER}
	if err := ca.writeCRLFile(crl); err != nil {
		return nil, fmt.Errorf("update CRL: %w", err)
	}
	return crl, nil
}

// writeCRLFile mirrors the latest CRL to DIR/ca.crl, unless another process
// already wrote a newer one there.
func (ca *CA) writeCRLFile(crl *CRL) error {
	path := filepath.Join(ca.dir, CRLFile)
	if b, err := os.ReadFile(path); err == nil {
		if block, _ := pem.Decode(b); block != nil {
			if old, err := x509.ParseRevocationList(block.Bytes); err == nil && old.Number != nil &&
				old.Number.Cmp(big.NewInt(crl.Number)) > 0 {
				return nil
			}
		}
	}
	return WriteFiles(File{Path: path, Data: crl.PEM(), Perm: 0o644})
}

// LatestCRL returns the newest stored CRL without signing anything.
func (ca *CA) LatestCRL(ctx context.Context) (*CRL, error) {
	sc, err := ca.store.LatestCRL(ctx)
	if err != nil {
		return nil, err
	}
	return &CRL{Number: sc.Number, ThisUpdate: sc.ThisUpdate, NextUpdate: sc.NextUpdate, DER: sc.DER}, nil
}

// CurrentCRL returns the newest stored CRL, or signs a new one when there
// is none or the newest is past half its lifetime.
func (ca *CA) CurrentCRL(ctx context.Context) (*CRL, error) {
	crl, err := ca.LatestCRL(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err == nil && !crlStale(crl, ca.now()) {
		return crl, nil
	}
	return ca.UpdateCRL(ctx)
}

// crlStale reports whether crl is past half of its lifetime at now.
func crlStale(crl *CRL, now time.Time) bool {
	half := crl.NextUpdate.Sub(crl.ThisUpdate) / 2
	return !now.Before(crl.ThisUpdate.Add(half))
}
