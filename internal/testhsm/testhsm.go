// Package testhsm gives tests a real SoftHSM2 token: initialised once per
// test binary with softhsm2-util in a temporary directory, SOFTHSM2_CONF
// pointing at its configuration. Call Cleanup from TestMain.
package testhsm

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/keystore"
)

// Module is where Debian's softhsm2 package installs the PKCS#11 module.
const Module = "/usr/lib/softhsm/libsofthsm2.so"

// Label is the test token's label.
const Label = "gatehouse"

// Token is an initialised SoftHSM2 token.
type Token struct {
	Dir     string // holds softhsm2.conf, the token files and the PIN file
	PinFile string
	// PIN is the user PIN, for tests that check it never shows.
	PIN string
}

var (
	once  sync.Once
	tok   *Token
	start error
)

// Get returns the package's token, initialising it on first use. A test
// that cannot start SoftHSM2 fails, saying why.
func Get(t testing.TB) *Token {
	t.Helper()
	once.Do(func() { tok, start = initToken() })
	if start != nil {
		t.Fatalf("SoftHSM2 token: %v", start)
	}
	return tok
}

func initToken() (*Token, error) {
	if _, err := os.Stat(Module); err != nil {
		return nil, fmt.Errorf("%s missing: install Debian's softhsm2 (%w)", Module, err)
	}
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		return nil, fmt.Errorf("softhsm2-util missing: install Debian's softhsm2 (%w)", err)
	}
	dir, err := os.MkdirTemp("", "gatehouse-softhsm-")
	if err != nil {
		return nil, err
	}
	tokens := filepath.Join(dir, "tokens")
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		return nil, err
	}
	// The module reads SOFTHSM2_CONF when it is initialised, in this
	// process as in softhsm2-util.
	os.Setenv("SOFTHSM2_CONF", conf)
	b := make([]byte, 8)
	rand.Read(b)
	t := &Token{Dir: dir, PinFile: filepath.Join(dir, "pin"), PIN: "pin-" + hex.EncodeToString(b)}
	if err := os.WriteFile(t.PinFile, []byte(t.PIN+"\n"), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(util, "--init-token", "--free", "--label", Label, "--so-pin", "so-"+t.PIN, "--pin", t.PIN)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("softhsm2-util --init-token: %v: %s", err, out)
	}
	return t, nil
}

// URI returns the PKCS#11 URI of the key labelled object in the token.
func (t *Token) URI(object string) string {
	u := &keystore.PKCS11URI{Token: Label, Object: object, ModulePath: Module, PinSource: t.PinFile}
	return u.String()
}

// Cleanup removes the token's directory, if one was created.
func Cleanup() {
	if tok != nil {
		os.RemoveAll(tok.Dir)
	}
}
