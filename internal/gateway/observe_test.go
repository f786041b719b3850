package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/serial"
	"github.com/gatehouse/gatehouse/internal/telemetry/metrics"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

// observed is a gateway started with an injected clock and registry.
type observed struct {
	srv  *Server
	addr string
	clk  *testpki.Clock
	reg  *prometheus.Registry
	logs *lockedBuffer
}

// lockedBuffer is a log sink safe for the gateway's goroutines.
type lockedBuffer struct {
	lockedWriter
	buf *strings.Builder
}

func newLockedBuffer() *lockedBuffer {
	b := &strings.Builder{}
	return &lockedBuffer{lockedWriter: lockedWriter{mu: new(sync.Mutex), w: b}, buf: b}
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func startObserved(t testing.TB, clk *testpki.Clock, dir, yaml string) *observed {
	t.Helper()
	path := filepath.Join(dir, "gatehouse.yaml")
	testpki.WriteFile(t, path, []byte(yaml))
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	o := &observed{clk: clk, reg: prometheus.NewPedanticRegistry()}
	o.logs = newLockedBuffer()
	o.srv, err = New(f, Options{Log: slog.New(slog.NewTextHandler(o.logs, nil)), Now: o.clk.Now, Registry: o.reg})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return o
}

// scrape returns the admin endpoint's answer for path.
func (o *observed) admin(t testing.TB, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	o.srv.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.String()
}

// refusedHandshake connects with tc and reads, so that a refusal sent after the
// client's Finished (TLS 1.3) is seen; it returns the error, if any.
func refusedHandshake(addr string, tc *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, tc)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
	_, err = io.ReadAll(c)
	return err
}

func TestAdminMetricsStatusReady(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	clk := testpki.NewClock()
	revoked := p.inter.Client(t, "revoked-client")
	crl := filepath.Join(p.dir, "inter.crl")
	testpki.WriteFile(t, crl, p.inter.CRL(t, 3, clk.Now().Add(-time.Minute), clk.Now().Add(time.Hour), revoked.Cert.SerialNumber))
	o := startObserved(t, clk, p.dir, strings.Replace(baseConfig(p, be.URL, ""), "  trusted_cas: [ca.pem]\n",
		"  trusted_cas: [ca.pem]\n  revocation: {crl: [inter.crl], refresh: 1m}\n", 1))

	// Handshakes: one good, and one refused for each reason.
	c := httpClient(o.addr, p.clientTLS(p.client, "localhost"), false)
	if code, _, _ := get(t, c, "localhost", "/x"); code != 200 {
		t.Fatalf("good client: %d", code)
	}
	expired := p.inter.Leaf(t, testpki.LeafOptions{CN: "expired", NotBefore: clk.Now().Add(-48 * time.Hour), NotAfter: clk.Now().Add(-time.Hour)})
	serverOnly := p.inter.Leaf(t, testpki.LeafOptions{CN: "no-eku", EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	foreign := p.foreign.Client(t, "stranger")
	for reason, leaf := range map[metrics.HandshakeFailure]*testpki.Leaf{
		metrics.FailNoCertificate: nil, metrics.FailUnknownCA: foreign, metrics.FailExpired: expired,
		metrics.FailRevoked: revoked, metrics.FailMissingClientAuth: serverOnly,
	} {
		if err := refusedHandshake(o.addr, p.clientTLS(leaf, "localhost")); err == nil {
			t.Errorf("%s: handshake accepted", reason)
		}
	}

	code, body := o.admin(t, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`gatehouse_tls_handshakes_total{cipher="TLS_AES_128_GCM_SHA256",group="X25519MLKEM768",resumed="false",version="1.3"} 1`,
		`gatehouse_tls_handshake_failures_total{reason="no_certificate"} 1`,
		`gatehouse_tls_handshake_failures_total{reason="unknown_ca"} 1`,
		`gatehouse_tls_handshake_failures_total{reason="expired"} 1`,
		`gatehouse_tls_handshake_failures_total{reason="revoked"} 1`,
		`gatehouse_tls_handshake_failures_total{reason="missing_client_auth_eku"} 1`,
		`gatehouse_tls_handshake_failures_total{reason="policy"} 0`,
		`gatehouse_certificate_not_after_timestamp_seconds{file="` + filepath.Join(p.dir, "server.pem") + `",issuer_cn="Test Issuing CA",role="server",serial="` + serial.Format(p.server.Cert.SerialNumber) + `",subject_cn=`,
		`role="server_chain",serial="` + serial.Format(p.inter.Cert.SerialNumber),
		`role="client_ca",serial="` + serial.Format(p.root.Cert.SerialNumber),
		`gatehouse_crl_number{issuer_cn="Test Issuing CA",source="` + crl + `"} 3`,
		`gatehouse_crl_revoked_certificates{issuer_cn="Test Issuing CA",source="` + crl + `"} 1`,
		`gatehouse_config_last_reload_successful 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "client-a") || strings.Contains(body, serial.Format(p.client.Cert.SerialNumber)) {
		t.Error("/metrics names a client certificate")
	}

	code, body = o.admin(t, "/status")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != 200 {
		t.Fatalf("/status %d: %v\n%s", code, err, body)
	}
	if !st.Ready || st.Config.Reload.LastResult != "success" || len(st.CRLs) != 1 || !st.CRLs[0].Loaded ||
		st.CRLs[0].Source != crl || st.CRLs[0].LastSuccess.IsZero() || st.Config.Routes != 1 {
		t.Errorf("/status: %s", body)
	}
	roles := map[string]bool{}
	for i, c := range st.Certificates {
		roles[c.Role] = true
		if i > 0 && c.NotAfter.Before(st.Certificates[i-1].NotAfter) {
			t.Error("/status certificates are not sorted by expiry")
		}
	}
	if !roles[metrics.RoleServer] || !roles[metrics.RoleServerChain] || !roles[metrics.RoleClientCA] {
		t.Errorf("/status roles %v", roles)
	}

	// /readyz follows the CRL: past its nextUpdate not ready, ready again
	// once a fresh one is loaded.
	if code, _ := o.admin(t, "/readyz"); code != 200 {
		t.Errorf("/readyz with a current CRL: %d", code)
	}
	clk.Add(2 * time.Hour)
	if code, body := o.admin(t, "/readyz"); code != 503 || !strings.Contains(body, "CRL") {
		t.Errorf("/readyz with a stale CRL: %d %s", code, body)
	}
	if code, _ := o.admin(t, "/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	testpki.WriteFile(t, crl, p.inter.CRL(t, 4, clk.Now().Add(-time.Minute), clk.Now().Add(time.Hour)))
	if err := o.srv.snap.Load().revocation.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, _ := o.admin(t, "/readyz"); code != 200 {
		t.Errorf("/readyz after the CRL was renewed: %d", code)
	}
}

// A reload logs what changed, and says so when a refused configuration
// is fixed.
func TestReloadRecord(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	o := startObserved(t, testpki.NewClock(), p.dir, baseConfig(p, be.URL, ""))
	path := filepath.Join(p.dir, "gatehouse.yaml")

	// Refused: the server certificate file is garbage.
	good := p.server
	testpki.WriteFile(t, filepath.Join(p.dir, "server.pem"), []byte("garbage"))
	if err := o.srv.Reload(mustLoad(t, path)); err == nil {
		t.Fatal("a broken certificate was accepted")
	}
	_, body := o.admin(t, "/metrics")
	if !strings.Contains(body, "gatehouse_config_last_reload_successful 0") || !strings.Contains(body, `gatehouse_config_reloads_total{result="failure"} 1`) {
		t.Errorf("refused reload not in metrics")
	}
	if st := o.srv.Status(); st.Config.Reload.LastResult != "failure" || st.Config.Reload.Refused != 1 || st.Config.Reload.LastError == "" {
		t.Errorf("status after a refusal: %+v", st.Config.Reload)
	}

	// Fixed: a renewed certificate and a new route.
	renewed := p.inter.Server(t, "localhost", "api.example.com", "other.example.com")
	renewed.Write(t, p.dir, "server")
	testpki.WriteFile(t, path, []byte(baseConfig(p, be.URL, "  - name: extra\n    path: /extra/\n    backend: "+be.URL+"\n")))
	if err := o.srv.Reload(mustLoad(t, path)); err != nil {
		t.Fatal(err)
	}
	logs := o.logs.String()
	for _, want := range []string{
		"configuration fixed: reload accepted after refused attempts",
		`msg="reload: route added" route=extra`,
		`msg="reload: certificate changed" role=server`,
		"serial_before=[" + serial.Format(good.Cert.SerialNumber) + "]",
		"serial_after=[" + serial.Format(renewed.Cert.SerialNumber) + "]",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if st := o.srv.Status(); st.Config.Reload.LastResult != "success" || st.Config.Reload.Refused != 0 {
		t.Errorf("status after the fix: %+v", st.Config.Reload)
	}
}

// countSeries counts every series in g but the Go and process ones.
func countSeries(t testing.TB, g prometheus.Gatherer) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "go_") && !strings.HasPrefix(mf.GetName(), "process_") {
			n += len(mf.GetMetric())
		}
	}
	return n
}

// TestCardinalityClients: 10,000 requests from 1,000 different client
// certificates are all counted and add no series at all.
func TestCardinalityClients(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	o := startObserved(t, testpki.NewClock(), p.dir, baseConfig(p, be.URL, ""))
	// Warm up with one client, so that the series of this traffic exist.
	c := httpClient(o.addr, p.clientTLS(p.client, "localhost"), false)
	get(t, c, "localhost", "/")
	before := countSeries(t, o.reg)
	const clients, perClient = 1000, 10
	for i := range clients {
		leaf := p.inter.Leaf(t, testpki.LeafOptions{CN: fmt.Sprintf("client-%d", i), URIs: []string{fmt.Sprintf("spiffe://example.com/c/%d", i)}})
		c := httpClient(o.addr, p.clientTLS(leaf, "localhost"), false)
		for range perClient {
			if code, _, _ := get(t, c, "localhost", fmt.Sprintf("/r/%d", i)); code != 200 {
				t.Fatalf("client %d: %d", i, code)
			}
		}
		c.CloseIdleConnections()
	}
	if after := countSeries(t, o.reg); after != before {
		t.Errorf("series grew from %d to %d over %d requests from %d clients", before, after, clients*perClient, clients)
	}
	_, body := o.admin(t, "/metrics")
	if want := fmt.Sprintf(`gatehouse_requests_total{code="200",decision="allowed",route="all"} %d`, clients*perClient+1); !strings.Contains(body, want) {
		t.Errorf("/metrics lacks %s", want)
	}
}

// TestRequestMetrics: requests through a real gateway, over real TLS, are
// counted by route, code, decision and outcome, with no identity in any
// label.
func TestRequestMetrics(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	o := startObserved(t, testpki.NewClock(), p.dir, baseConfig(p, be.URL, `  - name: api
    path: /api/
    backend: `+be.URL+`
    allow:
      - spiffe_id: "spiffe://example.com/billing/*"
  - name: dead
    path: /dead/
    backend: http://127.0.0.1:1
`))
	good := httpClient(o.addr, p.clientTLS(p.client, "localhost"), false)
	stranger := httpClient(o.addr, p.clientTLS(p.inter.Client(t, "stranger"), "localhost"), true)
	for _, c := range []struct {
		client *http.Client
		host   string
		path   string
		want   int
	}{
		{good, "localhost", "/api/orders", 200},
		{good, "localhost", "/api/orders", 200},
		{stranger, "localhost", "/api/orders", 403},
		{good, "localhost", "/public/%2e%2e/api/x", 400},
		{good, "api.example.com", "/x", 421},
		{good, "localhost", "/dead/x", 502},
		{stranger, "localhost", "/anything", 200},
	} {
		if code, _, _ := get(t, c.client, c.host, c.path); code != c.want {
			t.Errorf("%s %s: %d, want %d", c.host, c.path, code, c.want)
		}
	}
	_, body := o.admin(t, "/metrics")
	for _, want := range []string{
		`gatehouse_requests_total{code="200",decision="allowed",route="api"} 2`,
		`gatehouse_requests_total{code="403",decision="denied",route="api"} 1`,
		`gatehouse_authz_denials_total{reason="no_rule_matched",route="api"} 1`,
		`gatehouse_requests_total{code="400",decision="refused",route="(none)"} 1`,
		`gatehouse_requests_refused_total{gate="path"} 1`,
		`gatehouse_requests_total{code="421",decision="refused",route="(none)"} 1`,
		`gatehouse_misdirected_requests_total{reason="sni_host_mismatch"} 1`,
		`gatehouse_requests_total{code="502",decision="backend_error",route="dead"} 1`,
		`gatehouse_backend_errors_total{kind="error",route="dead"} 1`,
		`gatehouse_requests_total{code="200",decision="allowed",route="all"} 1`,
		`gatehouse_request_duration_seconds_count{route="api"} 3`,
		`gatehouse_requests_in_flight 0`,
		`gatehouse_tls_handshakes_total{cipher="TLS_AES_128_GCM_SHA256",group="X25519MLKEM768",resumed="false",version="1.3"} `, // one per connection; refusals close theirs
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, "stranger") || strings.Contains(body, "client-a") || strings.Contains(body, "orders") {
		t.Error("/metrics names a client or a path")
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

// With client_auth.refusal: http a refused certificate completes the
// handshake and gets a 400: it is still counted as a handshake failure by
// reason, and its requests as denials.
func TestRefusalInHTTPMetrics(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	o := startObserved(t, testpki.NewClock(), p.dir, strings.Replace(baseConfig(p, be.URL, ""),
		"trusted_cas: [ca.pem]", "trusted_cas: [ca.pem]\n  refusal: http", 1))
	c := httpClient(o.addr, p.clientTLS(p.foreign.Client(t, "stranger"), "localhost"), false)
	if code, _, _ := get(t, c, "localhost", "/x"); code != 400 {
		t.Fatalf("foreign certificate: %d, want 400", code)
	}
	_, body := o.admin(t, "/metrics")
	for _, want := range []string{
		`gatehouse_tls_handshake_failures_total{reason="unknown_ca"} 1`,
		`gatehouse_authz_denials_total{reason="certificate_refused",route="(none)"} 1`,
		`gatehouse_requests_total{code="400",decision="denied",route="(none)"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
