package pki

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The root's CRL. With --intermediate the root signs only intermediates,
// so its CRL (the list a verifier needs to accept the intermediate:
// `openssl verify -crl_check_all`, nginx with ssl_verify_depth 2) changes
// rarely and is signed with the root key, which stays offline: it is
// signed at init, valid for a year, and signed again by `gatehouse ca crl
// --root` (which asks for the passphrase). `ca serve` publishes it at
// /crl/root, the CRL distribution point of the intermediate.
const (
	// RootCRLFile is the root's CRL in PEM, beside the root certificate.
	RootCRLFile = "root.crl"
	// DefaultRootCRLValidity is how long a root CRL is valid.
	DefaultRootCRLValidity = 365 * 24 * time.Hour
)

// ErrNoRootCRL means the CA directory has no root CRL yet (a CA made
// before gatehouse wrote one): `gatehouse ca crl --root` creates it.
var ErrNoRootCRL = errors.New("no root CRL yet (create it with 'gatehouse ca crl --root')")

// RootCRLURL is where the root's CRL is published, or "" without a URL.
func (s Settings) RootCRLURL() string {
	if s.URL == "" {
		return ""
	}
	return strings.TrimRight(s.URL, "/") + "/crl/root"
}

// RootCRL returns the root's current CRL without signing anything. For a
// CA without an intermediate the root is the issuing CA and this is the
// issuing CA's latest CRL.
func (ca *CA) RootCRL(ctx context.Context) (*CRL, error) {
	if !ca.settings.Intermediate {
		return ca.LatestCRL(ctx)
	}
	rl, err := readRootCRL(filepath.Join(ca.dir, RootCRLFile), ca.root)
	if err != nil {
		return nil, err
	}
	return crlOf(rl), nil
}

// UpdateRootCRL signs a new root CRL with the root key (from the token, or
// DIR/ca-key.pem decrypted with passphrase), keeping the entries of the current one, and writes it to
// DIR/root.crl. For a CA without an intermediate it is UpdateCRL.
func (ca *CA) UpdateRootCRL(ctx context.Context, passphrase []byte) (*CRL, error) {
	if !ca.settings.Intermediate {
		return ca.UpdateCRL(ctx)
	}
	key, err := ca.OpenRootKey(passphrase)
	if err != nil {
		return nil, fmt.Errorf("update root CRL: %w", err)
	}
	defer CloseKey(key)
	prev, err := readRootCRL(filepath.Join(ca.dir, RootCRLFile), ca.root)
	if err != nil && !errors.Is(err, ErrNoRootCRL) {
		return nil, fmt.Errorf("update root CRL: %w", err)
	}
	crl, err := writeRootCRL(ca.dir, ca.root, key, ca.now(), prev)
	if err != nil {
		return nil, fmt.Errorf("update root CRL: %w", err)
	}
	return crl, nil
}

// writeRootCRL signs the root CRL following prev (nil for the first) and
// writes it to DIR/root.crl.
func writeRootCRL(dir string, root *x509.Certificate, key crypto.Signer, now time.Time, prev *x509.RevocationList) (*CRL, error) {
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(1),
		ThisUpdate: now,
		NextUpdate: now.Add(DefaultRootCRLValidity),
	}
	if prev != nil {
		tmpl.Number = new(big.Int).Add(prev.Number, big.NewInt(1))
		tmpl.RevokedCertificateEntries = prev.RevokedCertificateEntries
	}
	if tmpl.NextUpdate.After(root.NotAfter) {
		tmpl.NextUpdate = root.NotAfter
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, root, key)
	if err != nil {
		return nil, err
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, err
	}
	crl := crlOf(rl)
	if err := WriteFiles(File{Path: filepath.Join(dir, RootCRLFile), Data: crl.PEM(), Perm: 0o644}); err != nil {
		return nil, err
	}
	return crl, nil
}

// readRootCRL reads DIR/root.crl and checks that root signed it.
func readRootCRL(path string, root *x509.Certificate) (*x509.RevocationList, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoRootCRL
	}
	if err != nil {
		return nil, fmt.Errorf("read root CRL: %w", err)
	}
	der := b
	if block, _ := pem.Decode(b); block != nil {
		der = block.Bytes
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("read root CRL %s: %w", path, err)
	}
	if err := rl.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("read root CRL %s: not signed by %s: %w", path, RootCertFile, err)
	}
	if rl.Number == nil {
		return nil, fmt.Errorf("read root CRL %s: no CRL number", path)
	}
	return rl, nil
}

func crlOf(rl *x509.RevocationList) *CRL {
	return &CRL{Number: rl.Number.Int64(), ThisUpdate: rl.ThisUpdate, NextUpdate: rl.NextUpdate, DER: rl.Raw}
}

// serveRootCRL answers GET /crl/root from DIR/root.crl, read on each
// request: it changes about once a year, and reading a small file is
// cheaper than watching it. A CA without an intermediate serves its one
// CRL there too, so that one configuration fits both kinds of CA.
func (s *Server) serveRootCRL(w http.ResponseWriter, r *http.Request) {
	if !s.ca.settings.Intermediate {
		s.serveCRL(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	crl, err := s.ca.RootCRL(r.Context())
	if err != nil {
		s.log.Error("ca serve: root CRL unavailable", "err", err)
		http.Error(w, "root CRL unavailable", http.StatusServiceUnavailable)
		return
	}
	if !s.ca.now().Before(crl.ThisUpdate.Add(crl.NextUpdate.Sub(crl.ThisUpdate) * 3 / 4)) {
		s.log.Warn("ca serve: the root CRL expires soon; sign a new one with 'gatehouse ca crl --root'",
			"next_update", crl.NextUpdate.UTC().Format(time.RFC3339))
	}
	s.writeCRL(w, r, crl)
}
