package suitenames

import (
	"crypto/tls"
	"strings"
	"testing"
)

// Every suite Go implements is in the table under its Go (IANA) name.
func TestGoSuitesKnown(t *testing.T) {
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		n, ok := ByID(s.ID)
		if !ok || n.IANA != s.Name {
			t.Errorf("%s (%#04x): got %+v, %v", s.Name, s.ID, n, ok)
		}
	}
}

func TestByOpenSSL(t *testing.T) {
	for _, name := range []string{"ECDHE-RSA-AES128-GCM-SHA256", "ecdhe-rsa-aes128-gcm-sha256"} {
		if n, ok := ByOpenSSL(name); !ok || n.ID != tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 {
			t.Errorf("ByOpenSSL(%q) = %+v, %v", name, n, ok)
		}
	}
	if n, ok := ByOpenSSL("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"); ok {
		t.Errorf("an IANA name resolved as an OpenSSL name: %+v", n)
	}
	for _, n := range All() {
		if n.OpenSSL != strings.ToUpper(n.OpenSSL) {
			t.Errorf("%s: OpenSSL name %q is not upper case (ByOpenSSL folds to upper case)", n.IANA, n.OpenSSL)
		}
	}
}
