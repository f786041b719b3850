package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/pki"
	"github.com/gatehouse/gatehouse/internal/pki/enroll"
	"github.com/gatehouse/gatehouse/internal/serial"
)

// renewClock, if not nil, schedules 'cert renew --daemon' (tests set it).
var renewClock enroll.Clock

func newCertCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Get and renew certificates from a gatehouse CA's enrollment API",
		Long: `gatehouse cert is the client of 'gatehouse ca serve --tls-listen': 'request'
spends a one-time token (from 'gatehouse ca token') on a first certificate,
'renew' trades the current certificate for a fresh one over mutual TLS, once
or (--daemon) whenever two thirds of its lifetime have passed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newCertRequestCmd(env), newCertRenewCmd(env))
	return cmd
}

// clientFlags are the flags that reach the CA.
type clientFlags struct{ caURL, root string }

func (f *clientFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.caURL, "ca-url", "", "the CA's enrollment API, like https://ca.example.com:8443 (required)")
	cmd.Flags().StringVar(&f.root, "root", "", "the CA's root certificate (ca.pem), the only trust anchor for the CA (required)")
	cmd.MarkFlagRequired("ca-url")
	cmd.MarkFlagRequired("root")
}

func (f *clientFlags) client() (*enroll.Client, error) {
	roots, err := enroll.LoadRoots(f.root)
	if err != nil {
		return nil, usageError(err)
	}
	c, err := enroll.NewClient(f.caURL, roots)
	if err != nil {
		return nil, usageError(err)
	}
	return c, nil
}

func newCertRequestCmd(env *Env) *cobra.Command {
	var (
		cf                                  clientFlags
		token, tokenFile, out, kt, passFile string
		force                               bool
	)
	cmd := &cobra.Command{
		Use:   "request --ca-url URL --root ca.pem --token T --out PREFIX",
		Short: "Spend a one-time token on a new key and certificate",
		Long: `Generate a key, send a CSR with the names the token grants, and write
PREFIX.pem (the certificate followed by the intermediates) and PREFIX-key.pem
(PKCS#8, mode 0600; encrypted with --key-passphrase-file), both atomically.
The token is spent. An existing PREFIX.pem or PREFIX-key.pem is not
overwritten unless --force is given; the check runs before the token is
sent, so a refused run leaves the token unspent. ('cert renew' replaces its
own files, as it is meant to.)`,
		Example: `  gatehouse cert request --ca-url https://ca.example.com:8443 --root ca.pem --token "$TOKEN" --out partner-a`,
		Args:    cobra.NoArgs,
		RunE: caRunE(func() error {
			if (token == "") == (tokenFile == "") {
				return usageError(errors.New("give the token with --token T or --token-file F"))
			}
			if tokenFile != "" {
				b, err := readSecretFile(tokenFile, "token")
				if err != nil {
					return err
				}
				token = string(b)
			}
			keyType, err := pki.ParseKeyType(kt)
			if err != nil {
				return usageError(err)
			}
			var pass []byte
			if passFile != "" {
				if pass, err = readSecretFile(passFile, "key passphrase"); err != nil {
					return err
				}
			}
			if err := checkOutPrefix(out); err != nil {
				return err
			}
			if err := checkTargets([]string{out + ".pem", out + "-key.pem"}, force); err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			key, err := keyType.Generate()
			if err != nil {
				return err
			}
			chain, err := c.Request(env.ctx(), token, key)
			if err != nil {
				return err
			}
			keyPEM, err := pki.MarshalKeyPEM(key, pass)
			if err != nil {
				return err
			}
			files := []pki.File{
				{Path: out + ".pem", Data: pki.CertsPEM(chain...), Perm: 0o644},
				{Path: out + "-key.pem", Data: keyPEM, Perm: 0o600},
			}
			if err := pki.WriteFiles(files...); err != nil {
				return err
			}
			printCert(env, "issued", chain[0], files...)
			return nil
		}),
	}
	cf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&token, "token", "", "the one-time token from 'gatehouse ca token'")
	fl.StringVar(&tokenFile, "token-file", "", "read the token from this file (one line, see docs/ca.md#secret-files)")
	fl.StringVar(&out, "out", "", "output prefix: writes PREFIX.pem and PREFIX-key.pem (required)")
	fl.StringVar(&kt, "key-type", string(pki.KeyECDSAP256), "key type: "+oneOf(keyTypeNames()...))
	fl.StringVar(&passFile, "key-passphrase-file", "", "encrypt PREFIX-key.pem with the passphrase in this file (one line)")
	fl.BoolVar(&force, "force", false, "overwrite existing PREFIX.pem and PREFIX-key.pem")
	cmd.MarkFlagRequired("out")
	return cmd
}

func newCertRenewCmd(env *Env) *cobra.Command {
	var (
		cf                          clientFlags
		certFile, keyFile, passFile string
		execCmd                     string
		signalPID                   int
		daemon, keepKey             bool
	)
	cmd := &cobra.Command{
		Use:   "renew --ca-url URL --root ca.pem --cert F --key F [--daemon] [--exec CMD | --signal PID]",
		Short: "Renew a certificate with itself, once or whenever it is due",
		Long: `Authenticate to the CA with the current certificate (mutual TLS) and get a
fresh one with the same subject, names and profile, for a new key of the same
type (--keep-key keeps the key). Both files are replaced atomically, then
--exec runs CMD with sh -c (GATEHOUSE_CERT and GATEHOUSE_KEY set) or --signal
sends SIGHUP to PID.

Without --daemon, renews now and exits. With --daemon, renews whenever two
thirds of the certificate's lifetime have passed (less a random jitter), and
retries with exponential backoff while the CA is unreachable; it stops on
Ctrl-C, or with exit 1 when the CA refuses for good (revoked, expired).`,
		Example: `  gatehouse cert renew --ca-url https://ca.example.com:8443 --root ca.pem \
      --cert partner-a.pem --key partner-a-key.pem --daemon --exec 'systemctl reload myapp'`,
		Args: cobra.NoArgs,
		RunE: caRunE(func() error {
			if execCmd != "" && signalPID != 0 {
				return usageError(errors.New("--exec and --signal are exclusive: choose one hook"))
			}
			if signalPID < 0 {
				return usageError(fmt.Errorf("--signal %d: not a process id", signalPID))
			}
			var pass []byte
			if passFile != "" {
				var err error
				if pass, err = readSecretFile(passFile, "key passphrase"); err != nil {
					return err
				}
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(env.Stderr, nil))
			r := &enroll.Renewer{Client: c, CertFile: certFile, KeyFile: keyFile, KeyPassphrase: pass,
				KeepKey: keepKey, Log: log, Clock: renewClock,
				Hook: renewHook(env, execCmd, signalPID, certFile, keyFile)}
			if _, err := r.Load(); err != nil {
				return usageError(err)
			}
			if daemon {
				return r.Run(env.ctx())
			}
			leaf, err := r.RenewNow(env.ctx())
			if err != nil {
				return err
			}
			printCert(env, "renewed", leaf, pki.File{Path: certFile}, pki.File{Path: keyFile})
			return nil
		}),
	}
	cf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&certFile, "cert", "", "the certificate (chain PEM) to renew and rewrite (required)")
	fl.StringVar(&keyFile, "key", "", "its key (PEM), rewritten with the new key (required)")
	fl.StringVar(&passFile, "key-passphrase-file", "", "the key is encrypted with the passphrase in this file (one line; the new key is too)")
	fl.BoolVar(&keepKey, "keep-key", false, "renew for the current key instead of a new one")
	fl.BoolVar(&daemon, "daemon", false, "keep running, renewing at two thirds of each certificate's lifetime")
	fl.StringVar(&execCmd, "exec", "", "after each renewal, run this command with sh -c")
	fl.IntVar(&signalPID, "signal", 0, "after each renewal, send SIGHUP to this process id")
	cmd.MarkFlagRequired("cert")
	cmd.MarkFlagRequired("key")
	return cmd
}

// renewHook runs --exec or sends --signal after a renewal.
func renewHook(env *Env, execCmd string, pid int, certFile, keyFile string) func(context.Context, *x509.Certificate) error {
	switch {
	case execCmd != "":
		return func(ctx context.Context, leaf *x509.Certificate) error {
			cmd := exec.CommandContext(ctx, "sh", "-c", execCmd)
			cmd.Env = append(os.Environ(), "GATEHOUSE_CERT="+certFile, "GATEHOUSE_KEY="+keyFile,
				"GATEHOUSE_SERIAL="+serial.Format(leaf.SerialNumber))
			cmd.Stdout, cmd.Stderr = env.Stderr, env.Stderr
			cmd.WaitDelay = 10 * time.Second
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("--exec %q: %w", execCmd, err)
			}
			return nil
		}
	case pid != 0:
		return func(context.Context, *x509.Certificate) error {
			if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
				return fmt.Errorf("--signal %s: %w", strconv.Itoa(pid), err)
			}
			return nil
		}
	}
	return nil
}

func printCert(env *Env, verb string, c *x509.Certificate, files ...pki.File) {
	fmt.Fprintf(env.Stdout, "%s certificate %q, serial %s, valid until %s\n",
		verb, c.Subject.CommonName, serial.Format(c.SerialNumber), c.NotAfter.UTC().Format(time.RFC3339))
	for _, f := range files {
		fmt.Fprintf(env.Stdout, "  wrote %s\n", f.Path)
	}
}
