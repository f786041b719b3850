package scan

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

// The package's tests start one nginx (TestMain stops it) with two
// servers: a deliberately weak one and Mozilla's intermediate
// configuration.
var (
	pkgDir    string
	ngxOnce   sync.Once
	ngx       *nginxSet
	ngxErr    error
	ngxCmd    *exec.Cmd
	aiaSrv    *http.Server
	ngxExited <-chan struct{}
)

func TestMain(m *testing.M) {
	var err error
	pkgDir, err = os.MkdirTemp("", "scan-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if ngxCmd != nil && ngxCmd.Process != nil {
		ngxCmd.Process.Signal(os.Interrupt)
		select {
		case <-ngxExited:
		case <-time.After(5 * time.Second):
			ngxCmd.Process.Kill()
		}
	}
	if aiaSrv != nil {
		aiaSrv.Close()
	}
	os.RemoveAll(pkgDir)
	os.Exit(code)
}

// nginxSet is the running nginx and the PKI behind it.
type nginxSet struct {
	root, inter *testpki.CA
	weakAddr    string // TLS 1.0-1.2, CBC + 3DES, expired leaf, no intermediate, optional_no_ca
	modernAddr  string // Mozilla intermediate
	rootFile    string
	aiaURL      string
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startNginx starts the package's nginx once. A test that needs it and
// cannot start it fails with the reason.
func startNginx(t *testing.T) *nginxSet {
	t.Helper()
	ngxOnce.Do(func() { ngx, ngxErr = launchNginx(t) })
	if ngxErr != nil {
		t.Fatalf("nginx: %v", ngxErr)
	}
	return ngx
}

func launchNginx(t *testing.T) (*nginxSet, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		return nil, fmt.Errorf("nginx is not installed (apt-get install nginx; see scripts/packages.txt): %w", err)
	}
	dir := filepath.Join(pkgDir, "nginx")
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	n := &nginxSet{}
	n.root = testpki.NewRoot(t, "Scan Test Root")
	n.inter = n.root.Intermediate(t, "Scan Test Issuing CA")
	n.rootFile = n.root.WriteCert(t, dir, "root.pem")

	// The AIA server hands out the intermediate the weak server omits,
	// the intermediate's CRL and an OCSP responder for its leaves.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	base := "http://" + ln.Addr().String()
	n.aiaURL = base + "/inter.der"
	weakSerial := big.NewInt(0x5ca1ab1e)
	interDER := n.inter.Cert.Raw
	goodCRL := n.inter.CRL(t, 1, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	revokedCRL := n.inter.CRL(t, 2, time.Now().Add(-time.Minute), time.Now().Add(time.Hour), weakSerial)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /inter.der", func(w http.ResponseWriter, r *http.Request) { w.Write(interDER) })
	mux.HandleFunc("GET /good.crl", func(w http.ResponseWriter, r *http.Request) { w.Write(goodCRL) })
	mux.HandleFunc("GET /revoked.crl", func(w http.ResponseWriter, r *http.Request) { w.Write(revokedCRL) })
	mux.Handle("POST /ocsp", ocspResponder(n.inter))
	aiaSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go aiaSrv.Serve(ln)

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	weak := n.inter.Leaf(t, testpki.LeafOptions{CN: "weak.test", DNS: []string{"weak.test"},
		IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Key: rsaKey,
		NotBefore: time.Now().Add(-50 * time.Minute), NotAfter: time.Now().Add(-10 * time.Minute),
		IssuingCertificateURL: []string{n.aiaURL}, CRLDistributionPoints: []string{base + "/revoked.crl"}, Serial: weakSerial})
	testpki.WriteFile(t, filepath.Join(dir, "weak.pem"), testpki.CertsPEM(weak.Cert)) // leaf only: incomplete
	testpki.WriteFile(t, filepath.Join(dir, "weak-key.pem"), weak.KeyPEM(t))
	modernKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	modern := n.inter.Leaf(t, testpki.LeafOptions{CN: "modern.test", DNS: []string{"modern.test"},
		IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Key: modernKey,
		CRLDistributionPoints: []string{base + "/good.crl"}, OCSPServer: []string{base + "/ocsp"}})
	modern.Write(t, dir, "modern")

	dh, err := exec.Command("openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048").Output()
	if err != nil {
		return nil, fmt.Errorf("openssl genpkey ffdhe2048: %w", err)
	}
	testpki.WriteFile(t, filepath.Join(dir, "dhparam.pem"), dh)

	n.weakAddr, n.modernAddr = freePort(t), freePort(t)
	user := ""
	if os.Getuid() == 0 {
		user = "user root;"
	}
	conf := fmt.Sprintf(`%s
daemon off;
master_process on;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/logs/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %[2]s/body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
  # Deliberately weak: TLS 1.0 and 1.1, CBC and 3DES (OpenSSL 3 needs
  # SECLEVEL=0 for them), an expired leaf served without its
  # intermediate, client certificates asked for but never verified,
  # no HSTS.
  server {
    listen %[3]s ssl;
    server_name weak.test;
    ssl_certificate %[2]s/weak.pem;
    ssl_certificate_key %[2]s/weak-key.pem;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2;
    # Debian's OpenSSL 3 has no 3DES at all (not even at SECLEVEL=0):
    # the Go server in TestUnverifiedClientCerts offers it instead.
    ssl_ciphers "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-SHA:AES128-SHA:AES256-SHA256:CAMELLIA128-SHA:@SECLEVEL=0";
    ssl_prefer_server_ciphers on;
    ssl_verify_client optional_no_ca;
    ssl_client_certificate %[2]s/root.pem;
    location / { return 200 "weak\n"; }
  }
  # Mozilla's intermediate configuration (ssl-config.mozilla.org, 5.7).
  server {
    listen %[4]s ssl http2;
    server_name modern.test;
    ssl_certificate %[2]s/modern.pem;
    ssl_certificate_key %[2]s/modern-key.pem;
    ssl_session_timeout 1d;
    ssl_session_cache shared:MozSSL:10m;
    ssl_session_tickets off;
    ssl_dhparam %[2]s/dhparam.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305;
    ssl_prefer_server_ciphers off;
    add_header Strict-Transport-Security "max-age=63072000" always;
    location / { return 200 "modern\n"; }
  }
}
`, user, dir, n.weakAddr, n.modernAddr)
	confFile := filepath.Join(dir, "nginx.conf")
	testpki.WriteFile(t, confFile, []byte(conf))
	var stderr bytes.Buffer
	ngxCmd = exec.Command(bin, "-p", dir, "-c", confFile, "-e", filepath.Join(dir, "logs", "error.log"))
	ngxCmd.Stderr = &stderr
	if err := ngxCmd.Start(); err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	exited := make(chan struct{})
	ngxExited = exited
	go func() { ngxCmd.Wait(); close(exited) }()
	for _, a := range []string{n.weakAddr, n.modernAddr} {
		if err := waitListening(a, 10*time.Second, exited); err != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
			return nil, fmt.Errorf("nginx did not listen on %s: %v\n%s%s", a, err, stderr.String(), log)
		}
	}
	return n, nil
}

func waitListening(addr string, d time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(d)
	for {
		select {
		case <-exited:
			return fmt.Errorf("the process exited")
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scanFor runs a scan with test defaults and fails the test on error.
func scanFor(t *testing.T, opts Options) *Report {
	t.Helper()
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	start := time.Now()
	r, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatalf("scan %s: %v", opts.Addr, err)
	}
	var b bytes.Buffer
	WriteText(&b, r, false)
	t.Logf("scan of %s took %v:\n%s", opts.Addr, time.Since(start).Round(time.Millisecond), b.String())
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("scan took %v, want well under a minute", d)
	}
	return r
}

// testsslFinding is one entry of testssl.sh's JSON file.
type testsslFinding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Finding  string `json:"finding"`
}

// runTestssl runs Debian's testssl.sh once on addr with limited checks
// and returns its findings by id.
func runTestssl(t *testing.T, addr, sni string, extra ...string) map[string]testsslFinding {
	t.Helper()
	bin, err := exec.LookPath("testssl")
	if err != nil {
		t.Fatalf("testssl.sh is not installed (apt-get install testssl.sh; see scripts/packages.txt): %v", err)
	}
	out := filepath.Join(t.TempDir(), "testssl.json")
	args := append([]string{"--protocols", "--std", "--server-preference", "--vulnerable", "--fast",
		"--warnings", "off", "--color", "0", "--quiet", "--nodns", "none", "--sneaky", "--jsonfile", out}, extra...)
	if sni != "" {
		args = append(args, "--ip", "127.0.0.1")
		host, port, _ := net.SplitHostPort(addr)
		_ = host
		addr = sni + ":" + port
	}
	args = append(args, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stdout
	err = cmd.Run()
	t.Logf("testssl %s took %v", strings.Join(args, " "), time.Since(start).Round(time.Second))
	data, rerr := os.ReadFile(out)
	if rerr != nil {
		t.Fatalf("testssl: %v (%v)\n%s", rerr, err, stdout.String())
	}
	var list []testsslFinding
	if err := json.Unmarshal(data, &list); err != nil {
		t.Fatalf("testssl json: %v", err)
	}
	m := map[string]testsslFinding{}
	for _, f := range list {
		m[f.ID] = f
	}
	return m
}

// compareTestssl checks that every protocol, cipher-category and
// vulnerability verdict testssl.sh gave, the scan gives too.
func compareTestssl(t *testing.T, r *Report, ts map[string]testsslFinding) {
	t.Helper()
	offered := func(f testsslFinding) bool {
		return strings.HasPrefix(f.Finding, "offered") || strings.HasPrefix(f.Finding, "supported")
	}
	for id, v := range map[string]uint16{"SSLv2": VersionSSL2, "SSLv3": VersionSSL3, "TLS1": VersionTLS10,
		"TLS1_1": VersionTLS11, "TLS1_2": VersionTLS12, "TLS1_3": VersionTLS13} {
		f, ok := ts[id]
		if !ok {
			t.Errorf("testssl gave no verdict for %s", id)
			continue
		}
		if got, want := r.offered(v), offered(f); got != want {
			t.Errorf("%s: scan says offered=%v, testssl says %q", id, got, f.Finding)
		}
	}
	any := func(pred func(Suite) bool) bool {
		for _, p := range r.Protocols {
			for _, s := range p.Suites {
				if pred(s) {
					return true
				}
			}
		}
		return false
	}
	// testssl.sh 3.0's --std categories, in OpenSSL's cipher-string terms.
	cats := map[string]func(Suite) bool{
		"cipherlist_NULL":   func(s Suite) bool { return s.Null },
		"cipherlist_aNULL":  func(s Suite) bool { return s.Anon },
		"cipherlist_EXPORT": func(s Suite) bool { return s.Export },
		"cipherlist_LOW": func(s Suite) bool {
			return !s.Export && !s.Anon && !s.Null && (s.RC4 || s.Bits == 56 || strings.HasPrefix(s.Cipher, "RC2"))
		},
		"cipherlist_3DES_IDEA": func(s Suite) bool { return strings.HasPrefix(s.Cipher, "3DES") || strings.HasPrefix(s.Cipher, "IDEA") },
		"cipherlist_AVERAGE": func(s Suite) bool {
			return s.CBC && !s.Block64 && !s.Export && !s.Anon && s.Bits >= 128
		},
		"cipherlist_STRONG": func(s Suite) bool { return s.AEAD && !s.Anon },
	}
	for id, pred := range cats {
		f, ok := ts[id]
		if !ok {
			t.Errorf("testssl gave no verdict for %s", id)
			continue
		}
		if got, want := any(pred), offered(f); got != want {
			t.Errorf("%s: scan says offered=%v, testssl says %q", id, got, f.Finding)
		}
	}
	vulns := map[string]string{"heartbleed": "heartbleed", "CCS": "ccs_injection", "ROBOT": "robot",
		"CRIME_TLS": "crime", "POODLE_SSL": "poodle_ssl", "SWEET32": "sweet32", "FREAK": "freak",
		"DROWN": "drown", "LOGJAM": "logjam", "BEAST": "beast", "LUCKY13": "lucky13", "RC4": "rc4", "BREACH": "breach", "ticketbleed": "ticketbleed"}
	for tid, id := range vulns {
		f, ok := ts[tid]
		if !ok && (tid == "BREACH" || tid == "ticketbleed") {
			continue // testssl.sh skips them when it cannot speak HTTP (client certificate required)
		}
		if !ok {
			t.Errorf("testssl gave no verdict for %s", tid)
			continue
		}
		if f.Severity == "WARN" { // testssl could not test it (e.g. RC4 without local support)
			continue
		}
		tsAffected := f.Severity != "OK" && f.Severity != "INFO" && !strings.Contains(f.Finding, "not vulnerable")
		var v *Vuln
		for i := range r.Vulns {
			if r.Vulns[i].ID == id {
				v = &r.Vulns[i]
			}
		}
		if v == nil {
			t.Errorf("scan gave no verdict for %s", id)
			continue
		}
		affected := v.Status == Vulnerable || v.Status == Exposed
		if affected != tsAffected {
			t.Errorf("%s: scan says %s (%s), testssl says %s %q", tid, v.Status, v.Detail, f.Severity, f.Finding)
		}
	}
	if f, ok := ts["fallback_SCSV"]; ok && (strings.HasPrefix(f.Finding, "supported") || strings.Contains(f.Finding, "NOT supported")) {
		want := strings.HasPrefix(f.Finding, "supported")
		if got := r.Behaviour.FallbackSCSV == "supported"; got != want {
			t.Errorf("fallback SCSV: scan says %q, testssl says %q", r.Behaviour.FallbackSCSV, f.Finding)
		}
	}
	if f, ok := ts["secure_renego"]; ok {
		if got, want := r.Behaviour.SecureRenegotiation, strings.HasPrefix(f.Finding, "supported"); got != want && f.Severity != "INFO" {
			t.Errorf("secure renegotiation: scan says %v, testssl says %q", got, f.Finding)
		}
	}
	// testssl.sh does not test it when the server requires a client
	// certificate ("client x509-based authentication prevents this").
	if f, ok := ts["secure_client_renego"]; ok && strings.Contains(strings.ToLower(f.Finding), "vulnerable") {
		want := "refused"
		if !strings.Contains(f.Finding, "not vulnerable") {
			want = "accepted"
		}
		if r.Behaviour.ClientRenegotiation != want {
			t.Errorf("client-initiated renegotiation: scan says %q, testssl says %q", r.Behaviour.ClientRenegotiation, f.Finding)
		}
	}
}

// compareSSLScan runs Debian's sslscan on addr: every protocol it finds
// enabled or not, and every suite it finds accepted, the scan finds too.
// (sslscan uses the system OpenSSL, so it cannot see suites OpenSSL 3
// dropped, such as 3DES and RC4: the scan may find more.)
func compareSSLScan(t *testing.T, r *Report, addr, sni string) {
	t.Helper()
	bin, err := exec.LookPath("sslscan")
	if err != nil {
		t.Fatalf("sslscan is not installed (apt-get install sslscan; see scripts/packages.txt): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--no-colour", "--xml=-", "--sni-name="+sni, addr).Output()
	if err != nil {
		t.Fatalf("sslscan: %v\n%s", err, out)
	}
	var doc struct {
		Protocols []struct {
			Type    string `xml:"type,attr"`
			Version string `xml:"version,attr"`
			Enabled string `xml:"enabled,attr"`
		} `xml:"ssltest>protocol"`
		Ciphers []struct {
			Status  string `xml:"status,attr"`
			Version string `xml:"sslversion,attr"`
			Cipher  string `xml:"cipher,attr"`
			ID      string `xml:"id,attr"`
		} `xml:"ssltest>cipher"`
	}
	if err := xml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("sslscan xml: %v\n%s", err, out)
	}
	if len(doc.Protocols) == 0 {
		t.Fatalf("sslscan found no protocols:\n%s", out)
	}
	names := map[string]uint16{"ssl2": VersionSSL2, "ssl3": VersionSSL3, "tls1.0": VersionTLS10, "tls1.1": VersionTLS11,
		"tls1.2": VersionTLS12, "tls1.3": VersionTLS13}
	for _, p := range doc.Protocols {
		v, ok := names[p.Type+p.Version]
		if !ok {
			continue
		}
		if got, want := r.offered(v), p.Enabled == "1"; got != want {
			t.Errorf("sslscan: %s enabled=%s, scan says offered=%v", VersionName(v), p.Enabled, got)
		}
	}
	versions := map[string]uint16{"SSLv3": VersionSSL3, "TLSv1.0": VersionTLS10, "TLSv1.1": VersionTLS11, "TLSv1.2": VersionTLS12, "TLSv1.3": VersionTLS13}
	for _, c := range doc.Ciphers {
		v := versions[c.Version]
		id, err := strconv.ParseUint(strings.TrimPrefix(c.ID, "0x"), 16, 16)
		if err != nil {
			t.Errorf("sslscan cipher id %q: %v", c.ID, err)
			continue
		}
		found := false
		for _, p := range r.Protocols {
			if p.Version == v {
				found = slices.ContainsFunc(p.Suites, func(s Suite) bool { return s.ID == uint16(id) })
				if found && c.Status == "preferred" && p.ServerOrder && p.Suites[0].ID != uint16(id) {
					t.Errorf("sslscan: %s preferred with %s, scan says %s first", c.Cipher, c.Version, p.Suites[0].OpenSSL)
				}
			}
		}
		if !found {
			t.Errorf("sslscan: %s accepted with %s, scan did not find it", c.Cipher, c.Version)
		}
	}
	t.Logf("sslscan agreed on %d protocols and %d suites", len(doc.Protocols), len(doc.Ciphers))
}

// ocspResponder answers OCSP requests for ca's certificates: good, for an
// hour, signed by ca itself.
func ocspResponder(ca *testpki.CA) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		resp, err := ocsp.CreateResponse(ca.Cert, ca.Cert, ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber,
			ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}, ca.Key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(resp)
	})
}
