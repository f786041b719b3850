package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gatehouse/gatehouse/internal/secretfile"
	"github.com/gatehouse/gatehouse/internal/units"
)

// passphraseEnv names the environment variable holding the CA passphrase.
const passphraseEnv = "GATEHOUSE_CA_PASSPHRASE"

// minPassphrase is the shortest passphrase `ca init` accepts for new keys.
const minPassphrase = 8

func newCACmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Run the certificate authority: init, issue, sign, revoke, crl, list, serve, token",
		Long: `gatehouse ca runs a certificate authority in a directory: a root (the trust
anchor you distribute, DIR/ca.pem), optionally an intermediate that signs,
their keys encrypted with a passphrase, and an inventory of everything issued.

The CA passphrase comes from --passphrase-file, else the environment variable
` + passphraseEnv + `, else it is asked on the terminal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		newCAInitCmd(env),
		newCAIssueCmd(env),
		newCASignCmd(env),
		newCARevokeCmd(env),
		newCACRLCmd(env),
		newCAListCmd(env),
		newCAServeCmd(env),
		newCAMigrateCmd(env),
		newCACSRCmd(env),
		newCATokenCmd(env),
	)
	return cmd
}

// caFlags are the flags every ca command shares.
type caFlags struct {
	dir, passphraseFile string
}

func (f *caFlags) register(cmd *cobra.Command, withPassphrase bool) {
	cmd.Flags().StringVar(&f.dir, "dir", "", "the CA directory (required)")
	cmd.MarkFlagRequired("dir")
	if withPassphrase {
		cmd.Flags().StringVar(&f.passphraseFile, "passphrase-file", "",
			"read the CA passphrase from this file, one line (default: $"+passphraseEnv+", else ask on the terminal)")
	}
}

// passphrase returns the CA passphrase from --passphrase-file, the
// environment, or the terminal (asking twice when confirm is set).
func (f *caFlags) passphrase(env *Env, confirm bool) ([]byte, error) {
	if f.passphraseFile != "" {
		return readSecretFile(f.passphraseFile, "passphrase")
	}
	if env.Getenv != nil {
		if p := env.Getenv(passphraseEnv); p != "" {
			return []byte(p), nil
		}
	}
	file, ok := env.Stdin.(*os.File)
	if !ok || !term.IsTerminal(int(file.Fd())) {
		return nil, usageError(fmt.Errorf("no CA passphrase: use --passphrase-file FILE or set %s (standard input is not a terminal to ask on)", passphraseEnv))
	}
	p, err := prompt(env, file, "CA passphrase: ")
	if err != nil {
		return nil, err
	}
	if confirm {
		again, err := prompt(env, file, "CA passphrase again: ")
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(p, again) {
			return nil, errors.New("read passphrase: the two passphrases differ")
		}
	}
	if len(p) == 0 {
		return nil, errors.New("read passphrase: empty")
	}
	return p, nil
}

func prompt(env *Env, f *os.File, msg string) ([]byte, error) {
	fmt.Fprint(env.Stderr, msg)
	p, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(env.Stderr)
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	return p, nil
}

// readSecretFile reads a passphrase, password or token file by the one
// rule every secret file follows (secretfile.Read); a file that holds no
// usable secret is the user's input error (exit 2).
func readSecretFile(path, what string) ([]byte, error) {
	b, err := secretfile.Read(path, what)
	if errors.Is(err, secretfile.ErrContent) {
		return nil, usageError(err)
	}
	return b, err
}

// parseDurationFlag parses a duration flag's value ("" is zero).
func parseDurationFlag(name, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := units.ParseDuration(v)
	if err != nil {
		return 0, usageError(fmt.Errorf("--%s: %w", name, err))
	}
	return d, nil
}

// oneOf formats choices for help texts.
func oneOf(choices ...string) string { return strings.Join(choices, "|") }

// caRunE adapts a ca command's body to cobra: an error that is not already
// a usage error is an operation failure (exit 1), since Execute takes
// unmarked errors for cobra's own command-line errors (exit 2).
func caRunE(run func() error) func(*cobra.Command, []string) error {
	return func(*cobra.Command, []string) error {
		err := run()
		var ee *exitError
		if err == nil || errors.As(err, &ee) {
			return err
		}
		return &exitError{code: ExitError, err: err}
	}
}
