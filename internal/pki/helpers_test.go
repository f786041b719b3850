package pki

import (
	"bytes"
	"github.com/gatehouse/gatehouse/internal/pki/store"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testpg"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

var testPass = []byte("correct horse battery staple")

func newClock() *testpki.Clock { return testpki.NewClock() }

// newCA creates a CA in a fresh temporary directory.
func newCA(t testing.TB, opts InitOptions) *CA {
	t.Helper()
	if opts.Passphrase == nil {
		opts.Passphrase = testPass
	}
	if opts.Store == "" && os.Getenv("GATEHOUSE_TEST_STORE") == "postgres" {
		opts.Store = testpg.NewDB(t) // the whole suite on PostgreSQL
	}
	ca, err := Init(filepath.Join(t.TempDir(), "ca"), opts)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() { ca.Close() })
	return ca
}

// openssl runs the openssl binary, skipping the test if it is missing.
func openssl(t testing.TB, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	var out bytes.Buffer
	cmd := exec.Command("openssl", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func mustOpenSSL(t testing.TB, args ...string) string {
	t.Helper()
	out, err := openssl(t, args...)
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func writeFile(t testing.TB, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// listDir names the files in dir.
func listDir(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

var storeFilterAll = store.Filter{}
