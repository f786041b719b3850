package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/pki"
	"github.com/gatehouse/gatehouse/internal/units"
)

// At most ocspRefusedBurst refused OCSP requests are logged one by one per
// ocspRefusedWindow; the rest are summarized.
// (Variables, so that a test can shorten the window.)
var (
	ocspRefusedBurst  = 10
	ocspRefusedWindow = time.Minute
)

func newCAServeCmd(env *Env) *cobra.Command {
	var (
		f            caFlags
		ef           enrollFlags
		listen, poll string
		signerLife   string
		obs          caObserveFlags
	)
	cmd := &cobra.Command{
		Use:   "serve --dir DIR --listen ADDR [--tls-listen ADDR]",
		Short: "Publish the CRL and answer OCSP over HTTP",
		Long: `Serve the CA's revocation information over plain HTTP (so that it can be
fetched before any trust exists; CRLs and OCSP answers are signed):

  GET /crl               the issuing CA's current CRL, DER (PEM with ?format=pem)
  GET /crl/root          the root's CRL (revoked intermediates), the CRL
                         distribution point of the intermediate
  POST /ocsp, GET /ocsp/<base64 request>   OCSP, RFC 6960 and RFC 5019

OCSP answers good, revoked (with time and reason) or unknown, cached until the
inventory changes, and signed by a delegated OCSP signing certificate
(id-kp-OCSPSigning, ocsp-nocheck) that the server issues itself at start,
keeps its key in memory only, and renews at half of --ocsp-signer-validity:
the CA key signs once a renewal, not once an answer. Revocations made by
'gatehouse ca revoke' in another process are picked up within --poll, without
a restart. The CRL is re-signed before it expires. Runs until Ctrl-C.

With the inventory in PostgreSQL (ca init --store, ca migrate), run several
replicas on copies of DIR: each serves the same CRL and OCSP answers; a
change made anywhere reaches all of them at once (PostgreSQL NOTIFY), and
within --poll at worst.

With --tls-listen, the enrollment API and EST (RFC 7030) are served over
HTTPS, with a certificate the CA issues itself for --tls-name:

  POST /enroll/v1/request   a CSR and "Authorization: Bearer TOKEN" (see 'ca token')
  POST /enroll/v1/renew     a CSR, over mutual TLS with the current certificate
  /.well-known/est/cacerts, simpleenroll, simplereenroll, csrattrs

Each issuance is recorded in the inventory with who asked (token id or
renewing serial) and from where, and written as a JSON audit line on stdout.

With --metrics-listen, the inventory is exported to Prometheus on a separate
loopback listener (counts by profile and status, the soonest expiry, a gauge
for each certificate expiring within --warn-within). With --webhook, a JSON
notice is posted when a certificate enters a --webhook-thresholds window.`,
		Example: `  gatehouse ca serve --dir pki --listen 127.0.0.1:8089
  # ask about a certificate; -issuer is the CA that signed it:
  # a CA made with --intermediate (the intermediate signs, the root is trusted)
  openssl ocsp -issuer pki/intermediate.pem -CAfile pki/ca.pem -cert api.pem -url http://127.0.0.1:8089/ocsp
  # a CA made without --intermediate (the root signs)
  openssl ocsp -issuer pki/ca.pem -CAfile pki/ca.pem -cert api.pem -url http://127.0.0.1:8089/ocsp`,
		Args: cobra.NoArgs,
		RunE: caRunE(func() error {
			p, err := parseDurationFlag("poll", poll)
			if err != nil {
				return err
			}
			life, err := parseDurationFlag("ocsp-signer-validity", signerLife)
			if err != nil {
				return err
			}
			ca, err := openCA(env, &f)
			if err != nil {
				return err
			}
			defer ca.Close()
			// The passphrase has been used: a long-running server keeps it
			// out of its environment, so that no child process and no
			// os.Environ caller sees it. (/proc/PID/environ still shows the
			// initial environment to the same user and root: prefer
			// --passphrase-file.)
			os.Unsetenv(passphraseEnv)
			log := slog.New(newBoundedHandler(slog.NewTextHandler(env.Stderr, nil),
				"ca serve: OCSP request refused", ocspRefusedBurst, ocspRefusedWindow))
			srv, err := pki.NewServer(ca, pki.ServerOptions{Poll: p, Logger: log, OCSPSignerValidity: life})
			if err != nil {
				return err
			}
			if err := obs.start(env, ca, log); err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(env.ctx())
			defer cancel()
			waitEnroll, err := startEnrollment(ctx, env, ca, &ef, log)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				cancel()
				return errors.Join(fmt.Errorf("ca serve: %w", err), waitEnroll())
			}
			base := "http://" + ln.Addr().String()
			// This line is the ready signal: tests wait for it.
			fmt.Fprintf(env.Stdout, "gatehouse ca serve: CRL at %s/crl, OCSP at %s/ocsp, root CRL at %s/crl/root\n", base, base, base)
			if _, err := ca.RootCRL(env.ctx()); err != nil {
				fmt.Fprintf(env.Stderr, "gatehouse: warning: /crl/root cannot be served: %v\n", err)
			}
			if u := ca.Settings().URL; u != "" && u != base {
				fmt.Fprintf(env.Stdout, "  certificates point to %s: make sure it reaches this server\n", u)
			}
			err = srv.Serve(ctx, ln)
			cancel()
			return errors.Join(err, waitEnroll())
		}),
	}
	f.register(cmd, true)
	ef.register(cmd)
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8089", "address to listen on")
	cmd.Flags().StringVar(&signerLife, "ocsp-signer-validity", units.FormatDuration(pki.DefaultOCSPSignerValidity), "life of the delegated OCSP signing certificate (renewed at half-life)")
	obs.register(cmd)
	cmd.Flags().StringVar(&poll, "poll", units.FormatDuration(time.Second), "how often to look for revocations made by other processes")
	return cmd
}
