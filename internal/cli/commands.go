package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/gatehouse/gatehouse/internal/pki"
)

// addNewUserCmds adds what a new user expects of a command-line tool:
// version (and --version), shell completion that knows flag values, and
// man pages.
func addNewUserCmds(root *cobra.Command, env *Env) {
	setVersion(root)
	root.AddCommand(newVersionCmd(env), newManCmd(env))
	// cobra adds `completion bash|zsh|fish|powershell`; flags with a
	// fixed set of values complete them.
	values := map[string][]string{
		"profile":  {"server", "client"},
		"reason":   pki.ReasonNames(),
		"key-type": keyTypeNames(),
		"mode":     {"require", "optional", "none"},
		"format":   {"pem", "der"},
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for name, vals := range values {
			if c.Flags().Lookup(name) != nil {
				c.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(vals, cobra.ShellCompDirectiveNoFileComp))
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func newManCmd(env *Env) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "man --dir DIR",
		Short: "Write a man page for every command into DIR",
		Long: `Write a man page (section 1) for gatehouse and each of its commands into DIR,
generated from the commands' own help: gatehouse.1, gatehouse-serve.1,
gatehouse-ca-issue.1 and so on. Install them with, for example,
  gatehouse man --dir /usr/local/share/man/man1 && mandb`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fi, err := os.Stat(dir)
			if err != nil || !fi.IsDir() {
				return usageError(fmt.Errorf("--dir %q: not a directory (create it first)", dir))
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true // pages do not change with the build date
			header := &doc.GenManHeader{Title: "GATEHOUSE", Section: "1", Source: "gatehouse " + buildVersion(), Manual: "gatehouse manual"}
			if err := doc.GenManTree(root, header, dir); err != nil {
				return fmt.Errorf("write man pages: %w", err)
			}
			fmt.Fprintf(env.Stdout, "wrote man pages to %s\n", dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory to write the pages to (required)")
	cmd.MarkFlagRequired("dir")
	return cmd
}
