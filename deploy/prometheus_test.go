package deploy_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/cli"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

// promServer is the Prometheus the tests share: started once in
// TestMain, on 127.0.0.1, with its data in a temporary directory. Its
// scrape targets come from a file_sd file the tests write.
type promServer struct {
	url     string
	targets string // file_sd JSON
	err     error  // why it could not start
	mu      sync.Mutex
	jobs    []map[string]any
}

var prom promServer

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gatehouse-prometheus-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	stop := prom.start(dir)
	code := m.Run()
	stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// start runs Prometheus and waits until it is ready; failures are kept in
// p.err for the tests that need it to report.
func (p *promServer) start(dir string) (stop func()) {
	stop = func() {}
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		p.err = fmt.Errorf("prometheus not found: install the Debian package prometheus (scripts/packages.txt)")
		return
	}
	p.targets = filepath.Join(dir, "targets.json")
	if err := os.WriteFile(p.targets, []byte("[]"), 0o600); err != nil {
		p.err = err
		return
	}
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		p.err = err
		return
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: gatehouse
    file_sd_configs: [{files: [%q], refresh_interval: 1s}]
`, rules, p.targets)), 0o600)
	addr, err := freePort()
	if err != nil {
		p.err = err
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	logf, _ := os.Create(filepath.Join(dir, "prometheus.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		cancel()
		p.err = fmt.Errorf("start prometheus: %w", err)
		return
	}
	stop = func() {
		cancel()
		cmd.Wait()
		logf.Close()
	}
	p.url = "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(p.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return stop
			}
		}
	}
	log, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
	p.err = fmt.Errorf("prometheus did not become ready on %s:\n%s", addr, log)
	return stop
}

// scrape adds a target (host:port serving /metrics) with a job label.
func (p *promServer) scrape(t *testing.T, job, target string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.jobs = append(p.jobs, map[string]any{"targets": []string{target}, "labels": map[string]string{"job": job}})
	data, _ := json.Marshal(p.jobs)
	tmp := p.targets + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p.targets); err != nil {
		t.Fatal(err)
	}
}

type promResult struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query runs an instant query.
func (p *promServer) query(t *testing.T, q string) []promResult {
	t.Helper()
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []promResult `json:"result"`
		} `json:"data"`
	}
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
		t.Fatalf("query %s: %v %s", q, err, body)
	}
	return r.Data.Result
}

// eventually waits until q returns at least one series.
func (p *promServer) eventually(t *testing.T, q string) []promResult {
	t.Helper()
	return p.eventuallyN(t, q, 1)
}

// eventuallyN waits until q returns at least n series.
func (p *promServer) eventuallyN(t *testing.T, q string, n int) []promResult {
	t.Helper()
	var r []promResult
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if r = p.query(t, q); len(r) >= n {
			return r
		}
	}
	t.Errorf("Prometheus has %d series for %s, want %d", len(r), q, n)
	return r
}

func needProm(t *testing.T) {
	t.Helper()
	if prom.err != nil {
		t.Fatal(prom.err)
	}
}

// startGateway runs a real gateway (gateway.New + Serve) with its admin
// handler on its own loopback listener and returns the admin address.
func startGateway(t *testing.T) (admin string, pki *testpki.CA, client *testpki.Leaf, gw string) {
	t.Helper()
	dir := t.TempDir()
	root := testpki.NewRoot(t, "Prom Root")
	root.WriteCert(t, dir, "ca.pem")
	root.Server(t, "localhost").Write(t, dir, "server")
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(backend.Close)
	path := filepath.Join(dir, "gatehouse.yaml")
	testpki.WriteFile(t, path, []byte(`listen: "127.0.0.1:0"
server_tls:
  certificates: [{cert: server.pem, key: server-key.pem}]
client_auth: { mode: require, trusted_cas: [ca.pem] }
routes:
  - { name: api, path: /, backend: "`+backend.URL+`" }
`))
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gateway.New(f, gateway.Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	as := &http.Server{Handler: srv.AdminHandler(), ReadHeaderTimeout: 5 * time.Second}
	go as.Serve(aln)
	t.Cleanup(func() { as.Close(); cancel(); <-done })
	return aln.Addr().String(), root, root.Client(t, "prom-client"), ln.Addr().String()
}

// startCAServe runs `gatehouse ca serve --metrics-listen` on a CA with a
// client certificate expiring in 5 days, and returns the metrics address.
func startCAServe(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	env := map[string]string{"GATEHOUSE_CA_PASSPHRASE": "correct horse battery staple"}
	run := func(args ...string) string {
		t.Helper()
		var out, errb strings.Builder
		if code := cli.Run(&cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}, args); code != 0 {
			t.Fatalf("gatehouse %v: exit %d\n%s%s", args, code, out.String(), errb.String())
		}
		return out.String()
	}
	run("ca", "init", "--dir", dir, "--name", "Prom CA")
	run("ca", "issue", "--dir", dir, "--profile", "client", "--cn", "partner-soon", "--validity", "5d", "--out", filepath.Join(dir, "..", "soon"))

	ctx, cancel := context.WithCancel(context.Background())
	var stdout lockedBuilder
	done := make(chan int, 1)
	go func() {
		done <- cli.Run(&cli.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: io.Discard, Getenv: func(k string) string { return env[k] }, Ctx: ctx},
			[]string{"ca", "serve", "--dir", dir, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"})
	}()
	t.Cleanup(func() { cancel(); <-done })
	ready := regexp.MustCompile(`metrics at http://(127\.0\.0\.1:\d+)/metrics`)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := ready.FindStringSubmatch(stdout.String()); m != nil {
			return m[1]
		}
	}
	t.Fatalf("ca serve did not start: %s", stdout.String())
	return ""
}

type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPrometheusScrapesGatewayAndCA: a real Prometheus scrapes a real
// gateway's admin endpoint and a real `ca serve`, loads the alerting
// rules, and its query API returns the series the dashboard and the
// rules are built on.
func TestPrometheusScrapesGatewayAndCA(t *testing.T) {
	needProm(t)
	admin, root, client, gwAddr := startGateway(t)
	caMetrics := startCAServe(t)

	// Traffic: one good handshake and one refused.
	tc := &tls.Config{RootCAs: testpki.Pool(root), ServerName: "localhost", Certificates: []tls.Certificate{client.TLSCertificate()}}
	// Dialed at the gateway, named localhost: SNI and Host agree.
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, gwAddr)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc, DialContext: dial}, Timeout: 5 * time.Second}
	resp, err := c.Get("https://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("request through the gateway: %s", resp.Status)
	}
	if conn, err := tls.Dial("tcp", gwAddr, &tls.Config{RootCAs: testpki.Pool(root), ServerName: "localhost"}); err == nil {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Read(make([]byte, 1))
		conn.Close()
	}

	prom.scrape(t, "gatehouse", admin)
	prom.scrape(t, "gatehouse-ca", caMetrics)

	prom.eventuallyN(t, `up{job=~"gatehouse|gatehouse-ca"} == 1`, 2)
	for _, q := range []string{
		`gatehouse_certificate_not_after_timestamp_seconds{job="gatehouse",role="server",subject_cn="localhost"}`,
		`gatehouse_certificate_not_after_timestamp_seconds{job="gatehouse",role="client_ca",subject_cn="Prom Root"}`,
		`gatehouse_tls_handshakes_total{job="gatehouse",version="1.3"} > 0`,
		`gatehouse_tls_handshake_failures_total{job="gatehouse",reason="no_certificate"} > 0`,
		`gatehouse_config_last_reload_successful{job="gatehouse"} == 1`,
		`gatehouse_requests_total{job="gatehouse",route="api",code="200",decision="allowed"} == 1`,
		`gatehouse_request_duration_seconds_count{job="gatehouse",route="api"} == 1`,
		`go_goroutines{job="gatehouse"}`,
		`gatehouse_ca_certificates{job="gatehouse-ca",profile="client",status="valid"} == 1`,
		`gatehouse_ca_certificate_not_after_timestamp_seconds{job="gatehouse-ca",subject_cn="partner-soon"}`,
		`gatehouse_certificate_not_after_timestamp_seconds{job="gatehouse-ca",role="ca_root",subject_cn="Prom CA"}`,
	} {
		prom.eventually(t, q)
	}

	// The rules load and evaluate in a real Prometheus: the issued
	// certificate expiring in 5 days is pending (its `for` is 10m).
	prom.eventually(t, `ALERTS{alertname="GatehouseIssuedCertificateExpiringSoon",subject_cn="partner-soon"}`)
	resp, err = http.Get(prom.url + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), `"health":"err"`) || !strings.Contains(string(body), "GatehouseCertificateExpired") {
		t.Errorf("rules in Prometheus: %s", body)
	}
}
