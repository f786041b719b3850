package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/certsource"
	"github.com/gatehouse/gatehouse/internal/pki"
	"github.com/gatehouse/gatehouse/internal/pki/store"
	"github.com/gatehouse/gatehouse/internal/secretfile"
	"github.com/gatehouse/gatehouse/internal/serial"
)

func newDemoCmd(env *Env) *cobra.Command {
	var dir, listen string
	cmd := &cobra.Command{
		Use:   "demo [--dir DIR] [--listen ADDR]",
		Short: "Run a complete mTLS demo: CA, certificates, echo backend and gateway",
		Long: `Create a CA, a server and a client certificate under DIR (reused when it
exists), start a built-in echo backend and the gateway in front of it, and
print curl commands that succeed (with the client certificate) and fail
(without). Runs until Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), env, dir, listen, nil)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "gatehouse-demo", "directory for the demo CA, certificates and config")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8443", "gateway address")
	return cmd
}

// demoPassphraseFile holds the demo CA's passphrase. A real CA's
// passphrase never sits beside its key; the demo keeps one so that it can
// be run again without questions.
const demoPassphraseFile = "ca-passphrase.txt"

// runDemo prepares dir and runs the gateway until ctx is done. If ready is
// not nil it receives the gateway's address once it listens.
func runDemo(ctx context.Context, env *Env, dir, listen string, ready func(net.Addr)) error {
	if err := prepareDemo(env, dir); err != nil {
		return err
	}
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: start echo backend: %w", err)
	}
	echo := &http.Server{Handler: EchoHandler(), ReadHeaderTimeout: 10 * time.Second}
	go echo.Serve(backend)
	defer echo.Close()

	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgPath, []byte(demoConfig(listen, "http://"+backend.Addr().String())), 0o644); err != nil {
		return fmt.Errorf("demo: write config: %w", err)
	}
	clientSerial := ""
	if certs, err := certsource.LoadCerts(filepath.Join(dir, "client.pem")); err == nil {
		clientSerial = serial.Format(certs[0].SerialNumber)
	}
	err = serve(ctx, env, cfgPath, func(addr net.Addr) {
		printDemoHelp(env.Stderr, dir, cfgPath, addr, clientSerial)
		if ready != nil {
			ready(addr)
		}
	})
	if errors.Is(err, syscall.EADDRINUSE) {
		return usageError(fmt.Errorf("demo: %s is already in use (another demo running?): give another address with --listen, e.g. --listen 127.0.0.1:8444", listen))
	}
	return err
}

// prepareDemo creates the CA and certificates in dir, or reuses them when
// they exist and are valid for at least another day.
func prepareDemo(env *Env, dir string) error {
	passFile := filepath.Join(dir, demoPassphraseFile)
	_, err := os.Stat(filepath.Join(dir, pki.RootCertFile))
	switch {
	case err == nil && demoCertsValid(env, dir):
		fmt.Fprintf(env.Stderr, "gatehouse demo: reusing the CA and certificates in %s\n", dir)
		return nil
	case err == nil:
		pass, err := secretfile.Read(passFile, "CA passphrase")
		if err != nil {
			return fmt.Errorf("demo: %s has a CA but no readable %s; remove the directory to start over: %w", dir, demoPassphraseFile, err)
		}
		ca, err := pki.Open(dir, pass)
		if err != nil {
			return fmt.Errorf("demo: open CA in %s: %w", dir, err)
		}
		defer ca.Close()
		return issueDemoCerts(ca, dir)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("demo: %w", err)
	}
	pass := make([]byte, 24)
	rand.Read(pass)
	secret := []byte(hex.EncodeToString(pass))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	ca, err := pki.Init(dir, pki.InitOptions{Name: "gatehouse demo CA", Passphrase: secret})
	if err != nil {
		return fmt.Errorf("demo: create CA: %w", err)
	}
	defer ca.Close()
	if err := os.WriteFile(passFile, append(secret, '\n'), 0o600); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(env.Stderr, "gatehouse demo: created a CA in %s\n", dir)
	return issueDemoCerts(ca, dir)
}

func issueDemoCerts(ca *pki.CA, dir string) error {
	spiffe, _ := url.Parse("spiffe://demo.gatehouse.local/client/demo")
	for _, req := range []struct {
		name string
		req  pki.IssueRequest
	}{
		{"server", pki.IssueRequest{Profile: pki.ProfileServer, CN: "localhost", DNS: []string{"localhost"},
			IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}}},
		{"client", pki.IssueRequest{Profile: pki.ProfileClient, CN: "demo-client", URIs: []*url.URL{spiffe}}},
	} {
		iss, err := ca.Issue(req.req)
		if err != nil {
			return fmt.Errorf("demo: issue %s certificate: %w", req.name, err)
		}
		key, err := iss.KeyPEM(nil)
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		if err := pki.WriteFiles(
			pki.File{Path: filepath.Join(dir, req.name+".pem"), Data: iss.ChainPEM(), Perm: 0o644},
			pki.File{Path: filepath.Join(dir, req.name+"-key.pem"), Data: key, Perm: 0o600},
		); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	return nil
}

// demoCertsValid reports whether the demo's certificates can be used
// again: valid for another day, and not revoked (the demo shows how to
// revoke its client; the next run issues a new one).
func demoCertsValid(env *Env, dir string) bool {
	ca, err := pki.OpenPublic(dir)
	if err != nil {
		return false
	}
	defer ca.Close()
	for _, name := range []string{"server", "client"} {
		certs, err := certsource.LoadCerts(filepath.Join(dir, name+".pem"))
		if err != nil || time.Until(certs[0].NotAfter) < 24*time.Hour {
			return false
		}
		if _, err := os.Stat(filepath.Join(dir, name+"-key.pem")); err != nil {
			return false
		}
		rec, err := ca.Store().Get(context.Background(), store.FormatSerial(certs[0].SerialNumber))
		if err != nil || rec.Status == store.StatusRevoked {
			if err == nil {
				fmt.Fprintf(env.Stderr, "gatehouse demo: the %s certificate was revoked; issuing new certificates\n", name)
			}
			return false
		}
	}
	return true
}

func demoConfig(listen, backend string) string {
	return `# gatehouse demo configuration: a good start for your own.
# Paths are relative to this file. Check changes with:
#   gatehouse config check gatehouse.yaml
#
# The backends below are the demo's built-in echo server, on a port chosen
# afresh each time the demo starts (this file is rewritten then): point
# them at your own API to use this file with 'gatehouse serve'.
listen: "` + listen + `"
server_tls:
  certificates:
    - cert: server.pem          # leaf followed by intermediates
      key: server-key.pem
  min_version: "1.2"            # TLS 1.2 and 1.3; "1.3" for 1.3 only
client_auth:
  mode: optional                # ask for a certificate; routes decide if it is required
  trusted_cas: [ca.pem]         # client certificates must chain to these CAs
  revocation:
    crl: [ca.crl]               # 'gatehouse ca revoke' rewrites it; re-read when it changes
    refresh: 1s
hsts: { max_age: 2y, include_subdomains: false }
identity_headers: [xfcc]        # the backend sees the verified identity, never a forged one
routes:
  - name: health                # public: no client certificate needed
    path: /healthz
    backend: ` + backend + `
    require_client_cert: false
  - name: api                   # protected: only the demo client
    path: /api/
    backend: ` + backend + `
    allow:
      - spiffe_id: "spiffe://demo.gatehouse.local/client/*"
    methods: [GET, POST]
    max_body: 1MiB
log: { level: info, audit: stdout }
`
}

func printDemoHelp(w io.Writer, dir, cfgPath string, addr net.Addr, clientSerial string) {
	_, port, _ := net.SplitHostPort(addr.String())
	base := "https://localhost:" + port
	q := func(p string) string { return shellQuote(filepath.Join(dir, p)) }
	fmt.Fprintf(w, `
gatehouse demo is running (config: %s). Press Ctrl-C to stop.

With the client certificate, the API answers and echoes what the backend saw,
including the verified X-Forwarded-Client-Cert identity header:

  curl --cacert %s --cert %s --key %s %s/api/hello

Without it, the gateway refuses (403, "client certificate required"):

  curl --cacert %s %s/api/hello

The public health route needs no certificate:

  curl --cacert %s %s/healthz

`, cfgPath, q("ca.pem"), q("client.pem"), q("client-key.pem"), base, q("ca.pem"), base, q("ca.pem"), base)
	if clientSerial == "" {
		return
	}
	fmt.Fprintf(w, `Revocation is checked (client_auth.revocation in the config). Cut the demo
client off: revoke it, and within a second the gateway refuses it:

  gatehouse ca revoke --dir %s --passphrase-file %s --serial %s --reason keyCompromise
  curl --cacert %s --cert %s --key %s %s/api/hello

(curl now gets 400 {"error":"client certificate not accepted","reason":"revoked"}:
the demo runs client_auth.mode optional, whose refusals are answered in HTTP
with a reason code; the audit record on stdout has the detail. The next demo
run issues a new client certificate.)

`, q(""), q(demoPassphraseFile), clientSerial, q("ca.pem"), q("client.pem"), q("client-key.pem"), base)
}

func shellQuote(s string) string {
	if strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// EchoHandler is the demo backend: it answers every request with the
// request it saw as JSON (method, path, query, headers).
func EchoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(map[string]any{
			"method":  r.Method,
			"path":    r.URL.Path,
			"query":   r.URL.RawQuery,
			"host":    r.Host,
			"headers": r.Header,
			"body":    string(body),
		})
	})
}
