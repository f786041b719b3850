package cli

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

// config check takes its file as --config, -c, an argument, or from
// $GATEHOUSE_CONFIG, else the default path.
func TestConfigCheckPath(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	testpki.WriteFile(t, bad, []byte("listn: x\n"))
	for _, tc := range []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"positional", []string{"config", "check", bad}, "", bad + ":1: listn: unknown key"},
		{"shorthand", []string{"config", "check", "-c", bad}, "", bad + ":1: listn: unknown key"},
		{"environment", []string{"config", "check"}, bad, bad + ":1: listn: unknown key"},
		{"default", []string{"config", "check"}, "", "no configuration: " + DefaultConfigPath + " does not exist (give a file with -c FILE, or set $GATEHOUSE_CONFIG)"},
		{"serve default", []string{"serve"}, "", "no configuration: " + DefaultConfigPath + " does not exist"},
		{"two files", []string{"config", "check", "-c", bad, "other.yaml"}, "", "two configuration files given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			env := &Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string {
				if k == "GATEHOUSE_CONFIG" {
					return tc.env
				}
				return ""
			}}
			if code := Run(env, tc.args); code == 0 {
				t.Fatalf("exit 0 for an invalid file")
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tc.want)
			}
		})
	}
}
