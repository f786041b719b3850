package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Flags with a fixed set of values complete them in every shell.
func TestFlagValueCompletion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "ca", "issue", "--profile", ""}, []string{"server", "client"}},
		{[]string{"__complete", "ca", "sign", "--profile", ""}, []string{"server", "client"}},
		{[]string{"__complete", "ca", "revoke", "--reason", ""}, []string{"keyCompromise", "superseded"}},
		{[]string{"__complete", "ca", "init", "--key-type", ""}, []string{"ecdsa-p256", "ed25519", "rsa-3072"}},
		{[]string{"__complete", "ca", "issue", "--key-type", ""}, []string{"ecdsa-p384"}},
	} {
		code, out, errs := caRun(t, nil, tc.args...)
		if code != 0 {
			t.Fatalf("%v: exit %d %s", tc.args, code, errs)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w+"\n") {
				t.Errorf("%v: completions %q lack %q", tc.args, out, w)
			}
		}
	}
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		if code, out, _ := caRun(t, nil, "completion", shell); code != 0 || !strings.Contains(out, "gatehouse") {
			t.Errorf("completion %s: exit %d", shell, code)
		}
	}
}

// gatehouse man writes a page for every command, generated from its help.
func TestManPages(t *testing.T) {
	dir := t.TempDir()
	caMust(t, nil, "man", "--dir", dir)
	root := newRootCmd(&Env{})
	root.InitDefaultCompletionCmd()
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		if !c.IsAvailableCommand() && c != root {
			return
		}
		name := strings.ReplaceAll(c.CommandPath(), " ", "-") + ".1"
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("no man page for %q: %v", c.CommandPath(), err)
		} else if !strings.Contains(string(b), ".TH \"GATEHOUSE\" \"1\"") || !strings.Contains(string(b), strings.Fields(c.Short)[0]) {
			t.Errorf("%s: not a man page of %q:\n%.300s", name, c.CommandPath(), b)
		}
		n++
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if n < 15 {
		t.Errorf("only %d commands walked", n)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "gatehouse-ca-issue.1")); !strings.Contains(string(b), "force") {
		t.Error("ca issue page lacks its flags")
	}
	if code, _, errs := caRun(t, nil, "man", "--dir", filepath.Join(dir, "nope")); code == 0 || !strings.Contains(errs, "not a directory") {
		t.Errorf("man into a missing dir: exit %d %s", code, errs)
	}
}
