//go:build pkcs11

package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testhsm"
)

// TestEnrollPKCS11: with the CA key in a token, ca token signs the token
// and ca serve signs the certificates there; request and renew work as
// with file keys.
func TestEnrollPKCS11(t *testing.T) {
	tok := testhsm.Get(t)
	work := t.TempDir()
	dir := filepath.Join(work, "ca")
	caMust(t, nil, "ca", "init", "--dir", dir, "--intermediate", "--key-store", tok.URI("enrolltest"))
	api, _ := caServeTLS(t, nil, dir)
	root := filepath.Join(dir, "ca.pem")
	token := strings.TrimSpace(caMust(t, nil, "ca", "token", "--dir", dir, "--profile", "client", "--cn", "hsm-client"))
	out := filepath.Join(work, "hsm-client")
	caMust(t, nil, "cert", "request", "--ca-url", api, "--root", root, "--token", token, "--out", out)
	first := leafOf(t, out+".pem")
	caMust(t, nil, "cert", "renew", "--ca-url", api, "--root", root, "--cert", out+".pem", "--key", out+"-key.pem")
	if leafOf(t, out+".pem").SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("not renewed")
	}
	caMustOpenSSL(t, "verify", "-CAfile", root, "-untrusted", filepath.Join(dir, "intermediate.pem"), out+".pem")
}
