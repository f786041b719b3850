package pki

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/units"
)

// opensslCSR makes a CSR the way the openssl CA tutorials do.
func opensslCSR(t *testing.T, dir string, extra ...string) string {
	t.Helper()
	csr := filepath.Join(dir, "req.csr")
	args := append([]string{"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", filepath.Join(dir, "req-key.pem"), "-out", csr, "-subj", "/O=Partner Inc/CN=api.example.com"}, extra...)
	mustOpenSSL(t, args...)
	return csr
}

func TestSignOpenSSLCSR(t *testing.T) {
	ca := newCA(t, InitOptions{Intermediate: true, URL: "http://127.0.0.1:8089"})
	tmp := t.TempDir()
	csrPath := opensslCSR(t, tmp, "-addext", "subjectAltName=DNS:api.example.com,IP:127.0.0.1,email:ops@example.com")
	for _, form := range []string{"PEM", "DER"} {
		path := csrPath
		if form == "DER" {
			path = filepath.Join(tmp, "req.der")
			mustOpenSSL(t, "req", "-in", csrPath, "-outform", "DER", "-out", path)
		}
		b, _ := os.ReadFile(path)
		csr, err := ParseCSR(b)
		if err != nil {
			t.Fatalf("%s: %v", form, err)
		}
		iss, err := ca.Sign(csr, SignRequest{Profile: ProfileServer, Validity: 30 * units.Day})
		if err != nil {
			t.Fatalf("%s: %v", form, err)
		}
		leaf := writeFile(t, filepath.Join(tmp, "leaf.pem"), iss.ChainPEM())
		out := mustOpenSSL(t, "verify", "-purpose", "sslserver", "-CAfile", filepath.Join(ca.Dir(), RootCertFile),
			"-untrusted", filepath.Join(ca.Dir(), IntermediateCertFile), leaf)
		if !strings.Contains(out, ": OK") {
			t.Fatal(out)
		}
		// The certificate matches the key openssl generated.
		mod1 := mustOpenSSL(t, "pkey", "-in", filepath.Join(tmp, "req-key.pem"), "-pubout")
		mod2 := mustOpenSSL(t, "x509", "-in", leaf, "-noout", "-pubkey")
		if mod1 != mod2 {
			t.Error("certificate key differs from the CSR key")
		}
		text := mustOpenSSL(t, "x509", "-in", leaf, "-noout", "-text")
		for _, want := range []string{
			"Subject: O = Partner Inc, CN = api.example.com",
			"TLS Web Server Authentication", "Digital Signature", "CA:FALSE",
			"DNS:api.example.com", "IP Address:127.0.0.1", "email:ops@example.com",
			"URI:http://127.0.0.1:8089/crl", "OCSP - URI:http://127.0.0.1:8089/ocsp",
			"X509v3 Subject Key Identifier", "X509v3 Authority Key Identifier",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: openssl x509 -text lacks %q:\n%s", form, want, text)
			}
		}
		if strings.Contains(text, "Client Authentication") {
			t.Errorf("server certificate has clientAuth")
		}
	}
}

func TestSignRefusals(t *testing.T) {
	ca := newCA(t, InitOptions{})
	tmp := t.TempDir()
	read := func(p string) []byte { b, _ := os.ReadFile(p); return b }
	for name, tc := range map[string]struct {
		extra   []string
		profile Profile
		want    string
	}{
		"CA:TRUE":      {[]string{"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "subjectAltName=DNS:a.example"}, ProfileServer, "asks for CA:TRUE"},
		"codeSigning":  {[]string{"-addext", "extendedKeyUsage=codeSigning"}, ProfileClient, "asks for extended key usage codeSigning (1.3.6.1.5.5.7.3.3)"},
		"serverAuth":   {[]string{"-addext", "extendedKeyUsage=serverAuth"}, ProfileClient, "which the client profile does not allow"},
		"no SAN":       {nil, ProfileServer, "needs at least one DNS name or IP"},
		"unknown prof": {nil, "admin", "unknown profile"},
	} {
		t.Run(name, func(t *testing.T) {
			csr, err := ParseCSR(read(opensslCSR(t, tmp, tc.extra...)))
			if err != nil {
				t.Fatal(err)
			}
			_, err = ca.Sign(csr, SignRequest{Profile: tc.profile})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	// A CSR whose signature was tampered with: flip a bit of the signature.
	der := filepath.Join(tmp, "req.der")
	mustOpenSSL(t, "req", "-in", opensslCSR(t, tmp), "-outform", "DER", "-out", der)
	b := read(der)
	b[len(b)-5] ^= 0x01
	if _, err := ParseCSR(b); !errors.Is(err, ErrBadCSR) || !strings.Contains(err.Error(), "signature") {
		t.Errorf("tampered CSR: %v", err)
	}
	if _, err := ParseCSR([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")); !errors.Is(err, ErrBadCSR) {
		t.Errorf("certificate as CSR: %v", err)
	}
}

func TestNameConstraints(t *testing.T) {
	ca := newCA(t, InitOptions{NameConstraints: &NameConstraints{
		PermittedDNS: []string{"example.com"}, PermittedIPs: []string{"10.0.0.0/8"}, ExcludedDNS: []string{"secret.example.com"},
	}})
	iss, err := ca.Issue(IssueRequest{Profile: ProfileServer, CN: "api", DNS: []string{"api.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	leaf := writeFile(t, filepath.Join(t.TempDir(), "leaf.pem"), iss.ChainPEM())
	if out := mustOpenSSL(t, "verify", "-CAfile", filepath.Join(ca.Dir(), RootCertFile), leaf); !strings.Contains(out, ": OK") {
		t.Error(out)
	}
	if text := mustOpenSSL(t, "x509", "-in", filepath.Join(ca.Dir(), RootCertFile), "-noout", "-text"); !strings.Contains(text, "Permitted:") {
		t.Errorf("root lacks name constraints:\n%s", text)
	}
	for _, dns := range []string{"api.evil.com", "db.secret.example.com"} {
		if _, err := ca.Issue(IssueRequest{Profile: ProfileServer, CN: "x", DNS: []string{dns}}); !errors.Is(err, ErrNameNotAllowed) {
			t.Errorf("%s: %v", dns, err)
		}
	}
	recs, _ := ca.Store().List(t.Context(), storeFilterAll)
	if len(recs) != 1 {
		t.Errorf("refused certificates were recorded: %d records", len(recs))
	}
}
