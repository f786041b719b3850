package config

import (
	"strings"
	"testing"
)

// The client certificate and CRL bounds: defaults, and located errors for
// values out of range.
func TestClientAuthBounds(t *testing.T) {
	f, err := Parse("g.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	a := f.Config.ClientAuth
	if a.MaxChainLength != DefaultMaxChainLength || a.Revocation.MaxCRLSize != DefaultMaxCRLSize || a.AllowMissingEKU {
		t.Errorf("defaults: %+v", a)
	}
	ok := strings.Replace(minimal, "  trusted_cas: [ca.pem]\n",
		"  trusted_cas: [ca.pem]\n  max_chain_length: 6\n  allow_missing_eku: true\n  revocation: {max_crl_size: 32MiB}\n", 1)
	f, err = Parse("g.yaml", []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if a := f.Config.ClientAuth; a.MaxChainLength != 6 || !a.AllowMissingEKU || a.Revocation.MaxCRLSize != 32<<20 {
		t.Errorf("parsed: %+v", a)
	}
	for _, tc := range []struct{ set, want string }{
		{"  max_chain_length: 11\n", "g.yaml:5: client_auth.max_chain_length: 11 is out of range (use 1 to 10"},
		{"  max_chain_length: -1\n", "client_auth.max_chain_length: -1 is out of range"},
		{"  revocation: {max_crl_size: 1GiB}\n", "g.yaml:5: client_auth.revocation.max_crl_size: 1073741824 bytes is out of range (use 1KiB to 256MiB"},
		{"  revocation: {max_crl_size: 12}\n", "client_auth.revocation.max_crl_size: 12 bytes is out of range"},
	} {
		y := strings.Replace(minimal, "  trusted_cas: [ca.pem]\n", "  trusted_cas: [ca.pem]\n"+tc.set, 1)
		_, err := Parse("g.yaml", []byte(y))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.set, err, tc.want)
		}
	}
}
