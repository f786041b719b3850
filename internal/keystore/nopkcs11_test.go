//go:build !pkcs11

package keystore

import (
	"errors"
	"strings"
	"testing"
)

// The default build is pure Go: a pkcs11: key says how to get support.
func TestPKCS11NotBuiltIn(t *testing.T) {
	_, err := Open("pkcs11:token=a;object=b?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/p", nil)
	if !errors.Is(err, ErrNoPKCS11) || !strings.Contains(err.Error(), "-tags pkcs11") {
		t.Fatalf("Open = %v, want ErrNoPKCS11", err)
	}
}
