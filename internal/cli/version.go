package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// commit is the commit a build without VCS stamping was made from (a
// Docker build context without .git, or -buildvcs=false), set with
// -ldflags "-X github.com/gatehouse/gatehouse/internal/cli.commit=$(git rev-parse HEAD)".
// vcs.revision, when the toolchain recorded it, wins.
var commit string

// buildVersion describes this binary from what the Go toolchain recorded:
// the module version ("(devel)" for a build from a checkout), the commit
// (vcs.revision, "+dirty" when the tree had changes) and the Go version.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return versionFrom(bi)
}

func versionFrom(bi *debug.BuildInfo) string {
	version, commit := "(devel)", commit
	if commit == "" {
		commit = "unknown"
	}
	if bi != nil {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified {
			commit += "+dirty"
		}
	}
	return fmt.Sprintf("%s (commit %s, %s, %s/%s)", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func newVersionCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(env.Stdout, "gatehouse "+buildVersion())
			return nil
		},
	}
}

// setVersion makes `gatehouse --version` print what `gatehouse version` does.
func setVersion(root *cobra.Command) {
	root.Version = buildVersion()
	root.SetVersionTemplate("gatehouse {{.Version}}\n")
}
