package cli

import (
	"os"
	"regexp"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testhsm"
	"github.com/gatehouse/gatehouse/internal/testpg"
)

// TestMain stops what the tests started once for the package: the
// PostgreSQL cluster and the SoftHSM2 token directory.
func TestMain(m *testing.M) {
	code := m.Run()
	testpg.Stop()
	testhsm.Cleanup()
	os.Exit(code)
}

// regexpSerial finds the serial in `ca issue` output.
var regexpSerial = regexp.MustCompile(`serial ([0-9a-f]+),`)
