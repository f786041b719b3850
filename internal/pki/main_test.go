package pki

import (
	"os"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testhsm"
	"github.com/gatehouse/gatehouse/internal/testpg"
)

// TestMain stops the servers the tests started once for the package: the
// PostgreSQL cluster and the SoftHSM2 token directory.
func TestMain(m *testing.M) {
	code := m.Run()
	testpg.Stop()
	testhsm.Cleanup()
	os.Exit(code)
}
