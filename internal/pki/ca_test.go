package pki

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/units"
)

func TestInitOpenIssueVerifyWithOpenSSL(t *testing.T) {
	for _, kt := range []KeyType{KeyECDSAP256, KeyECDSAP384, KeyEd25519} {
		for _, inter := range []bool{false, true} {
			t.Run(string(kt)+map[bool]string{true: "-intermediate"}[inter], func(t *testing.T) {
				ca := newCA(t, InitOptions{KeyType: kt, Intermediate: inter, URL: "http://127.0.0.1:8089"})
				dir := ca.Dir()
				ca.Close()
				ca, err := Open(dir, testPass)
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer ca.Close()
				iss, err := ca.Issue(IssueRequest{Profile: ProfileServer, CN: "api.example.com",
					DNS: []string{"api.example.com"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
				if err != nil {
					t.Fatalf("Issue: %v", err)
				}
				if got := len(iss.Chain); got != map[bool]int{false: 1, true: 2}[inter] {
					t.Fatalf("chain has %d certificates", got)
				}
				leaf := writeFile(t, filepath.Join(t.TempDir(), "leaf.pem"), iss.ChainPEM())
				args := []string{"verify", "-CAfile", filepath.Join(dir, RootCertFile), "-purpose", "sslserver"}
				if inter {
					args = append(args, "-untrusted", filepath.Join(dir, IntermediateCertFile))
				}
				out := mustOpenSSL(t, append(args, leaf)...)
				if !strings.Contains(out, ": OK") {
					t.Fatalf("openssl verify: %s", out)
				}
				c := iss.Cert()
				if !slices.Equal(c.CRLDistributionPoints, []string{"http://127.0.0.1:8089/crl"}) ||
					!slices.Equal(c.OCSPServer, []string{"http://127.0.0.1:8089/ocsp"}) {
					t.Errorf("CDP %v OCSP %v", c.CRLDistributionPoints, c.OCSPServer)
				}
				if c.SerialNumber.BitLen() < 65 || len(c.SubjectKeyId) != 20 || len(c.AuthorityKeyId) == 0 {
					t.Errorf("serial %x SKI %x AKI %x", c.SerialNumber, c.SubjectKeyId, c.AuthorityKeyId)
				}
			})
		}
	}
}

func TestOpenErrors(t *testing.T) {
	ca := newCA(t, InitOptions{})
	dir := ca.Dir()
	ca.Close()
	_, err := Open(dir, []byte("wrong passphrase"))
	if !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("wrong passphrase: %v", err)
	}
	_, err = Open(t.TempDir(), testPass)
	if !errors.Is(err, ErrNotCA) {
		t.Errorf("empty dir: %v", err)
	}
	// A corrupt key: the base64 body replaced with garbage.
	keyPath := filepath.Join(dir, RootKeyFile)
	writeFile(t, keyPath, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{0, 0, 0}})) // junk, not a key
	_, err = Open(dir, testPass)
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("corrupt key: %v", err)
	}
}

func TestInitRefusesExistingCAAndLeavesNothingOnError(t *testing.T) {
	ca := newCA(t, InitOptions{})
	before := listDir(t, ca.Dir())
	if _, err := Init(ca.Dir(), InitOptions{Passphrase: testPass}); err == nil || !strings.Contains(err.Error(), "already holds a CA") {
		t.Errorf("second Init: %v", err)
	}
	if after := listDir(t, ca.Dir()); !slices.Equal(before, after) {
		t.Errorf("files changed: %v -> %v", before, after)
	}
	dir := filepath.Join(t.TempDir(), "new")
	if _, err := Init(dir, InitOptions{Passphrase: testPass, KeyType: "dsa"}); err == nil {
		t.Error("Init with key type dsa succeeded")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed Init left %s: %v", dir, err)
	}
	for _, f := range []string{RootKeyFile} {
		fi, err := os.Stat(filepath.Join(ca.Dir(), f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", f, fi.Mode(), err)
		}
	}
}

func TestIssueClientProfile(t *testing.T) {
	ca := newCA(t, InitOptions{})
	u, _ := url.Parse("spiffe://example.com/billing/api")
	iss, err := ca.Issue(IssueRequest{Profile: ProfileClient, CN: "partner-a", URIs: []*url.URL{u}, Emails: []string{"ops@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	c := iss.Cert()
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || c.KeyUsage != x509.KeyUsageDigitalSignature || c.IsCA {
		t.Errorf("EKU %v KU %v CA %v", c.ExtKeyUsage, c.KeyUsage, c.IsCA)
	}
	if _, err := ca.Issue(IssueRequest{Profile: "admin", CN: "x"}); !errors.Is(err, ErrUnknownProfile) {
		t.Errorf("unknown profile: %v", err)
	}
	if _, err := ca.Issue(IssueRequest{Profile: ProfileServer, CN: "x"}); err == nil || !strings.Contains(err.Error(), "at least one DNS name") {
		t.Errorf("server without SANs: %v", err)
	}
	if _, err := ca.Issue(IssueRequest{Profile: ProfileClient, CN: "x", Validity: 2 * units.Year}); err == nil || !strings.Contains(err.Error(), "exceeds this CA's maximum of 398d") {
		t.Errorf("validity: %v", err)
	}
}
