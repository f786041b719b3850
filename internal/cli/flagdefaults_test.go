package cli

import (
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Every duration a help text shows as a default is written as a user
// writes it ("15m", "1s"), never in Go's long form ("15m0s", "1h0m0s").
func TestHelpDurationDefaults(t *testing.T) {
	long := regexp.MustCompile(`[0-9][hm]0s$|[0-9]h0m$`)
	root := newRootCmd(&Env{})
	var walk func(c *cobra.Command)
	seen := 0
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if long.MatchString(f.DefValue) {
				t.Errorf("%s --%s: default %q in Go's long form", c.CommandPath(), f.Name, f.DefValue)
			}
			if f.Name == "ttl" && c.Name() == "token" {
				seen++
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if seen != 1 {
		t.Fatalf("ca token --ttl not found (%d)", seen)
	}
	_, out, _ := caRun(t, nil, "ca", "token", "--help")
	if !strings.Contains(out, `(default "15m")`) {
		t.Errorf("ca token --help:\n%s\nwant --ttl's default shown as \"15m\"", out)
	}
}
