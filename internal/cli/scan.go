package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/gatehouse/gatehouse/internal/certsource"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/scan"
	"github.com/gatehouse/gatehouse/internal/secretfile"
)

// ExitGradeBelow is scan's exit code when the grade is below --fail-below.
const ExitGradeBelow = 3

type scanFlags struct {
	config, serverName, ca, cert, key string
	misdirected, failBelow            string
	http, json, noFetch               bool
	timeout                           time.Duration
}

func newScanCmd(env *Env) *cobra.Command {
	var fl scanFlags
	cmd := &cobra.Command{
		Use:   "scan HOST:PORT | scan --config FILE",
		Short: "Audit a TLS endpoint: protocols, suites, certificates, mTLS, vulnerabilities, grade",
		Long: `Audit the TLS endpoint at HOST:PORT as SSL Labs and testssl.sh would, and
check how it handles client certificates: no certificate, a self-signed one,
one from an impostor CA with the trusted CA's name, one without the
clientAuth EKU, and (with --cert/--key) a valid one. Grades with SSL Labs'
rules and prints every rule that capped the grade.

With --config, scans the listener of a gatehouse configuration with its own
certificates: its client CAs for the impostor, its server certificate as a
certificate without clientAuth, its second virtual host for the 421 check.

Exit codes: 0 scanned (and the grade is not below --fail-below), 1 the scan
failed, 2 wrong usage, 3 the grade is below --fail-below.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScan(cmd.Context(), env, fl, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.config, "config", "", "scan the listener of this gatehouse configuration")
	f.StringVar(&fl.serverName, "servername", "", "SNI name and the name the certificate must match (default: the host)")
	f.StringVar(&fl.ca, "ca", "", "PEM roots to verify the server's chain (default: the system roots)")
	f.StringVar(&fl.cert, "cert", "", "client certificate (PEM) the server should accept")
	f.StringVar(&fl.key, "key", "", "private key of --cert")
	f.BoolVar(&fl.http, "http", false, "send HTTP requests after the handshake (HSTS, 421 on SNI/Host mismatch)")
	f.StringVar(&fl.misdirected, "misdirected-host", "", "Host header of another virtual host, for the 421 check (with --http)")
	f.BoolVar(&fl.json, "json", false, "print the report as JSON (schema in docs/scan.md)")
	f.StringVar(&fl.failBelow, "fail-below", "", "exit 3 when the grade is below this (A+ A A- B C D E F)")
	f.BoolVar(&fl.noFetch, "no-fetch", false, "do not fetch AIA issuers, CRLs or OCSP from the certificate's URLs")
	f.DurationVar(&fl.timeout, "timeout", 5*time.Second, "timeout of each connection")
	return cmd
}

func runScan(ctx context.Context, env *Env, fl scanFlags, args []string) error {
	if len(args) == 0 && fl.config == "" {
		return usageError(errors.New("scan: give HOST:PORT or --config FILE"))
	}
	if fl.failBelow != "" {
		if _, ok := scan.GradeRank(fl.failBelow); !ok {
			return usageError(fmt.Errorf("scan: --fail-below %q: not a grade (use A+, A, A-, B, C, D, E or F)", fl.failBelow))
		}
	}
	if (fl.cert == "") != (fl.key == "") {
		return usageError(errors.New("scan: --cert and --key go together"))
	}
	opts := scan.Options{ServerName: fl.serverName, HTTP: fl.http, MisdirectedHost: fl.misdirected,
		Fetch: !fl.noFetch, Timeout: fl.timeout}
	if len(args) == 1 {
		opts.Addr = args[0]
	}
	if fl.config != "" {
		if err := optionsFromConfig(fl.config, &opts); err != nil {
			return usageError(err)
		}
	}
	if _, _, err := net.SplitHostPort(opts.Addr); err != nil {
		return usageError(fmt.Errorf("scan: %q: want HOST:PORT", opts.Addr))
	}
	if fl.ca != "" {
		pool, inter, err := loadRoots(fl.ca)
		if err != nil {
			return usageError(err)
		}
		opts.Roots, opts.Intermediates = pool, inter
	}
	if fl.cert != "" {
		c, err := certsource.LoadKeyPair(fl.cert, fl.key, nil)
		if err != nil {
			return usageError(fmt.Errorf("scan: --cert/--key: %w", err))
		}
		opts.ClientCert = &c
	}
	progress := newProgress(env.Stderr, opts.Addr)
	opts.Progress = progress.step
	r, err := scan.Run(ctx, opts)
	progress.done()
	if err != nil {
		return &exitError{code: ExitError, err: err}
	}
	if fl.json {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return &exitError{code: ExitError, err: fmt.Errorf("scan: write report: %w", err)}
		}
	} else if err := scan.WriteText(env.Stdout, r, isTerminal(env.Stdout)); err != nil {
		return &exitError{code: ExitError, err: fmt.Errorf("scan: write report: %w", err)}
	}
	if fl.failBelow != "" && scan.GradeBelow(r.Grade.Grade, fl.failBelow) {
		return &exitError{code: ExitGradeBelow, err: fmt.Errorf("scan: grade %s is below %s", r.Grade.Grade, fl.failBelow)}
	}
	return nil
}

// loadRoots reads a PEM bundle: self-signed certificates become roots,
// the others intermediates that may complete a served chain.
func loadRoots(path string) (*x509.CertPool, *x509.CertPool, error) {
	certs, err := certsource.LoadCerts(path)
	if err != nil {
		return nil, nil, fmt.Errorf("scan: --ca: %w", err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	n := 0
	for _, c := range certs {
		if c.CheckSignatureFrom(c) == nil {
			roots.AddCert(c)
			n++
		} else {
			inter.AddCert(c)
		}
	}
	if n == 0 {
		return nil, nil, fmt.Errorf("scan: --ca %s: no self-signed root certificate in it", path)
	}
	return roots, inter, nil
}

// optionsFromConfig points opts at a gatehouse configuration's listener
// and hands the scan the configuration's own certificates.
func optionsFromConfig(path string, opts *scan.Options) error {
	f, err := config.Load(path)
	if err != nil {
		return err
	}
	c := &f.Config
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("%s: listen: %q: %w", path, c.Listen, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	if opts.Addr == "" {
		opts.Addr = net.JoinHostPort(host, port)
	}
	var certs []tls.Certificate
	for i, ck := range c.ServerTLS.Certificates {
		var pass []byte
		if ck.KeyPassphraseFile != "" {
			if pass, err = secretfile.Read(f.Resolve(ck.KeyPassphraseFile), "key passphrase"); err != nil {
				return fmt.Errorf("%s: server_tls.certificates[%d]: %w", path, i, err)
			}
		}
		kp, err := certsource.LoadKeyPair(f.Resolve(ck.Cert), f.Resolve(ck.Key), pass)
		if err != nil {
			return fmt.Errorf("%s: server_tls.certificates[%d]: %w", path, i, err)
		}
		certs = append(certs, kp)
	}
	names := func(i int) []string {
		if i >= len(certs) || certs[i].Leaf == nil {
			return nil
		}
		return certs[i].Leaf.DNSNames
	}
	if opts.ServerName == "" {
		for _, n := range names(0) {
			if !strings.Contains(n, "*") {
				opts.ServerName = n
				break
			}
		}
	}
	if opts.MisdirectedHost == "" {
		for i := 1; i < len(certs) && opts.MisdirectedHost == ""; i++ {
			for _, n := range names(i) {
				if !strings.Contains(n, "*") && certs[0].Leaf.VerifyHostname(n) != nil {
					opts.MisdirectedHost = n
					break
				}
			}
		}
	}
	var trusted []*x509.Certificate
	if c.ClientAuth.Mode != config.ModeNone {
		pool, cas, err := certsource.LoadCAs(resolveAll(f, c.ClientAuth.TrustedCAs))
		if err != nil {
			return fmt.Errorf("%s: client_auth.trusted_cas: %w", path, err)
		}
		trusted = cas
		opts.ClientCAs = cas
		opts.RequireClientCert = c.ClientAuth.Mode == config.ModeRequire
		// The server certificate is a certificate without clientAuth:
		// when a trusted client CA issued it, it must still be refused.
		if len(certs) > 0 && certs[0].Leaf != nil {
			inter := x509.NewCertPool()
			for _, d := range certs[0].Certificate[1:] {
				if ic, err := x509.ParseCertificate(d); err == nil {
					inter.AddCert(ic)
				}
			}
			if _, err := certs[0].Leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil && !hasClientAuth(certs[0].Leaf) {
				opts.NoEKUCert = &certs[0]
			}
		}
	}
	if opts.Roots == nil && len(trusted) > 0 {
		// The server's chain most often comes from the same CA as the
		// clients'; the system roots are kept for a public server CA.
		roots, err := x509.SystemCertPool()
		if err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		for _, ca := range trusted {
			if ca.CheckSignatureFrom(ca) == nil {
				roots.AddCert(ca)
			}
		}
		opts.Roots = roots
	}
	return nil
}

func hasClientAuth(c *x509.Certificate) bool {
	for _, e := range c.ExtKeyUsage {
		if e == x509.ExtKeyUsageClientAuth || e == x509.ExtKeyUsageAny {
			return true
		}
	}
	return len(c.ExtKeyUsage) == 0
}

func resolveAll(f *config.File, paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = f.Resolve(p)
	}
	return out
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress shows what the scan does on stderr: one line rewritten in
// place on a terminal, one line per step otherwise.
type progress struct {
	w      io.Writer
	tty    bool
	target string
}

func newProgress(w io.Writer, target string) *progress {
	return &progress{w: w, tty: isTerminal(w), target: target}
}

func (p *progress) step(s string) {
	if p.tty {
		fmt.Fprintf(p.w, "\r\x1b[Kscanning %s: %s...", p.target, s)
		return
	}
	fmt.Fprintf(p.w, "scanning %s: %s\n", p.target, s)
}

func (p *progress) done() {
	if p.tty {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}
