package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/pki"
	"github.com/gatehouse/gatehouse/internal/serial"
)

func newCARevokeCmd(env *Env) *cobra.Command {
	var (
		f                 caFlags
		serialArg, reason string
	)
	cmd := &cobra.Command{
		Use:   "revoke --dir DIR --serial HEX [--reason REASON]",
		Short: "Revoke a certificate and publish a new CRL",
		Long: `Revoke the certificate with this serial (hex, as 'ca list' or 'openssl x509
-serial' print it: 053E84F8...; colons, lower case and "serial=" accepted), then sign and store a new CRL
(DIR/ca.crl). A running 'gatehouse ca serve' picks the change up within its
poll interval, for both CRL and OCSP.

Reasons (RFC 5280): ` + strings.Join(pki.ReasonNames(), ", ") + `.
Revoking an unknown serial is an error; revoking twice changes nothing and
says so.`,
		Example: `  gatehouse ca revoke --dir pki --serial 3f2a9c... --reason keyCompromise`,
		Args:    cobra.NoArgs,
		RunE: caRunE(func() error {
			sn, err := serial.Parse(serialArg)
			if err != nil {
				return usageError(err)
			}
			r, err := pki.ParseReason(reason)
			if err != nil {
				return usageError(err)
			}
			ca, err := openCA(env, &f)
			if err != nil {
				return err
			}
			defer ca.Close()
			rec, err := ca.Revoke(env.ctx(), sn, r)
			if errors.Is(err, pki.ErrAlreadyRevoked) {
				fmt.Fprintf(env.Stderr, "gatehouse: serial %s was already revoked at %s (%s); nothing changed\n",
					serial.Format(sn), rec.RevokedAt.Format(time.RFC3339), pki.Reason(rec.Reason))
				return nil
			}
			if errors.Is(err, pki.ErrUnknownSerial) {
				return fmt.Errorf("revoke: serial %s was not issued by this CA (see 'gatehouse ca list')", serial.Format(sn))
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "revoked %s (%s), reason %s; CRL updated\n", serial.Format(sn), rec.Subject, r)
			return nil
		}),
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&serialArg, "serial", "", "serial number in hex, as 'openssl x509 -serial' or 'ca list' prints it; colons and lower case accepted (required)")
	cmd.Flags().StringVar(&reason, "reason", "unspecified", "revocation reason: "+oneOf(pki.ReasonNames()...))
	cmd.MarkFlagRequired("serial")
	return cmd
}

func newCACRLCmd(env *Env) *cobra.Command {
	var (
		f           caFlags
		out, format string
		root        bool
	)
	cmd := &cobra.Command{
		Use:   "crl --dir DIR --out FILE [--format pem|der]",
		Short: "Write the current CRL",
		Long: `Write the CA's current certificate revocation list to FILE. The newest stored
CRL is written as is while it is within the first half of its validity
(no passphrase needed); an older one is re-signed first with a higher CRL
number, which needs the CA passphrase.

With --root, write the root's CRL instead (for a CA made with
--intermediate: the list of revoked intermediates that verifiers checking
the whole chain need, published by 'ca serve' at /crl/root). It is signed
with the root key, valid for a year, and signed again (which needs the
passphrase) when past half of that. Give a verifier both: the issuing CA's
CRL and the root's.`,
		Example: `  gatehouse ca crl --dir pki --out pki/ca.crl
  openssl crl -in pki/ca.crl -text -noout
  gatehouse ca crl --dir pki --out - | openssl crl -text -noout
  gatehouse ca crl --dir pki --root --out pki/root.crl`,
		Args: cobra.NoArgs,
		RunE: caRunE(func() error {
			if format != "pem" && format != "der" {
				return usageError(fmt.Errorf("--format %q: use pem or der", format))
			}
			get := currentCRL
			if root {
				get = currentRootCRL
			}
			crl, err := get(env.ctx(), env, &f)
			if err != nil {
				return err
			}
			data := crl.DER
			if format == "pem" {
				data = crl.PEM()
			}
			if out == "-" {
				// Standard output, as openssl's -out - does; what
				// was written is said on standard error.
				if _, err := env.Stdout.Write(data); err != nil {
					return fmt.Errorf("write CRL: %w", err)
				}
				fmt.Fprintf(env.Stderr, "gatehouse: wrote CRL number %d (next update %s) to standard output\n",
					crl.Number, crl.NextUpdate.UTC().Format(time.RFC3339))
				return nil
			}
			if err := pki.WriteFiles(pki.File{Path: out, Data: data, Perm: 0o644}); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "wrote CRL number %d (next update %s) to %s\n",
				crl.Number, crl.NextUpdate.UTC().Format(time.RFC3339), out)
			return nil
		}),
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&out, "out", "", "write the CRL to this file, or to standard output with - (required)")
	cmd.Flags().StringVar(&format, "format", "pem", "encoding: pem|der")
	cmd.Flags().BoolVar(&root, "root", false, "write the root's CRL (revoked intermediates) instead of the issuing CA's")
	cmd.MarkFlagRequired("out")
	return cmd
}

// currentCRL returns the stored CRL if fresh, else opens the CA with its
// key and signs a new one.
func currentCRL(ctx context.Context, env *Env, f *caFlags) (*pki.CRL, error) {
	pub, err := pki.OpenPublic(f.dir)
	if err != nil {
		return nil, err
	}
	crl, err := pub.LatestCRL(ctx)
	pub.Close()
	if err == nil && time.Now().Before(crl.ThisUpdate.Add(crl.NextUpdate.Sub(crl.ThisUpdate)/2)) {
		return crl, nil
	}
	ca, err := openCA(env, f)
	if err != nil {
		return nil, err
	}
	defer ca.Close()
	return ca.UpdateCRL(ctx)
}

// currentRootCRL returns the root's stored CRL if fresh, else signs a new
// one with the root key.
func currentRootCRL(ctx context.Context, env *Env, f *caFlags) (*pki.CRL, error) {
	pub, err := pki.OpenPublic(f.dir)
	if err != nil {
		return nil, err
	}
	crl, err := pub.RootCRL(ctx)
	pub.Close()
	if err == nil && time.Now().Before(crl.ThisUpdate.Add(crl.NextUpdate.Sub(crl.ThisUpdate)/2)) {
		return crl, nil
	}
	pass, err := f.passphrase(env, false)
	if err != nil {
		return nil, err
	}
	ca, err := pki.Open(f.dir, pass)
	if err != nil {
		return nil, err
	}
	defer ca.Close()
	return ca.UpdateRootCRL(ctx, pass)
}
