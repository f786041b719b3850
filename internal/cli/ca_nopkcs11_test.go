//go:build !pkcs11

package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

// The default binary is pure Go: a pkcs11: key store says how to get one
// that has PKCS#11, and creates nothing.
func TestCAInitKeyStoreNeedsPKCS11Build(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	code, _, errs := caRun(t, nil, "ca", "init", "--dir", dir,
		"--key-store", "pkcs11:token=gatehouse?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/nonexistent")
	if code == 0 || !strings.Contains(errs, "built without PKCS#11 support; build with -tags pkcs11") {
		t.Fatalf("exit %d, stderr %s", code, errs)
	}
}
