package cli

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/serial"
	"github.com/gatehouse/gatehouse/internal/telemetry/notify"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// With admin.client_ca the admin listener speaks TLS and refuses a client
// without a certificate from that CA; the log is JSON with log.format.
func TestAdminClientCA(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewRoot(t, "root")
	ops := testpki.NewRoot(t, "ops CA")
	root.WriteCert(t, dir, "ca.pem")
	ops.WriteCert(t, dir, "ops-ca.pem")
	root.Server(t, "localhost").Write(t, dir, "server")
	adminAddr := freeAddr(t)
	cfg := filepath.Join(dir, "gatehouse.yaml")
	testpki.WriteFile(t, cfg, []byte(`listen: "127.0.0.1:0"
server_tls:
  certificates: [{cert: server.pem, key: server-key.pem}]
client_auth: { mode: require, trusted_cas: [ca.pem] }
admin: { listen: "`+adminAddr+`", client_ca: ops-ca.pem }
log: { format: json }
routes:
  - { name: api, backend: "http://127.0.0.1:9001" }
`))
	_, stderr := startServe(t, cfg)
	get := func(leaf *testpki.Leaf) (int, error) {
		tc := &tls.Config{RootCAs: testpki.Pool(root), ServerName: "localhost"}
		if leaf != nil {
			tc.Certificates = []tls.Certificate{leaf.TLSCertificate()}
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 5 * time.Second}
		resp, err := c.Get("https://" + adminAddr + "/readyz")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get(ops.Client(t, "operator")); err != nil || code != 200 {
		t.Errorf("operator certificate: %d %v", code, err)
	}
	if _, err := get(nil); err == nil {
		t.Error("admin answered a client without a certificate")
	}
	if _, err := get(root.Client(t, "api-client")); err == nil {
		t.Error("admin answered a certificate from the gateway's client CA, not admin.client_ca")
	}
	if resp, err := http.Get("http://" + adminAddr + "/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Error("admin answered plain HTTP")
		}
	}
	line, _, _ := strings.Cut(stderr.String(), "\n")
	var rec map[string]any
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["msg"] == nil {
		t.Errorf("log.format json: first line %q: %v", line, err)
	}
}

// expiry_alerts: the gateway's certificate (valid for a day) enters the
// 1d window at startup, and so does the root; the webhook is received
// once for each, and the record
// keeps a restarted gateway from sending it again.
func TestServeExpiryWebhook(t *testing.T) {
	var mu sync.Mutex
	var got []notify.Payload
	hook := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p notify.Payload
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &p)
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
	})}
	hln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hook.Serve(hln)
	t.Cleanup(func() { hook.Close() })

	dir := t.TempDir()
	root := testpki.NewRoot(t, "root")
	root.WriteCert(t, dir, "ca.pem")
	srv := root.Server(t, "localhost")
	srv.Write(t, dir, "server")
	cfg := filepath.Join(dir, "gatehouse.yaml")
	testpki.WriteFile(t, cfg, []byte(`listen: "127.0.0.1:0"
server_tls:
  certificates: [{cert: server.pem, key: server-key.pem}]
client_auth: { mode: require, trusted_cas: [ca.pem] }
expiry_alerts: { webhook: "http://`+hln.Addr().String()+`/hook", thresholds: [30d, 1d] }
routes:
  - { name: api, backend: "http://127.0.0.1:9001" }
`))
	received := func() []notify.Payload {
		mu.Lock()
		defer mu.Unlock()
		return append([]notify.Payload(nil), got...)
	}
	wait := func(n int) {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if len(received()) >= n {
				return
			}
		}
		t.Errorf("webhook: %d received, want %d", len(received()), n)
	}
	// Each serve runs in a subtest, which stops it at its end.
	t.Run("first", func(t *testing.T) {
		startServe(t, cfg)
		wait(2) // the server certificate and the client CA, both valid for a day
	})
	roles := map[string]notify.Payload{}
	for _, p := range received() {
		roles[p.Certificate.Role] = p
	}
	if p := roles["server"]; p.Threshold != "1d" || p.Certificate.Serial != serial.Format(srv.Cert.SerialNumber) || p.Source != "gateway" {
		t.Errorf("server payload %+v", p)
	}
	if p := roles["client_ca"]; p.Threshold != "1d" || p.Certificate.SubjectCN != "root" {
		t.Errorf("client CA payload %+v", p)
	}
	if _, err := os.Stat(filepath.Join(dir, "gatehouse-alerts.json")); err != nil {
		t.Errorf("no record: %v", err)
	}
	// Restart: the record says it was sent.
	t.Run("restart", func(t *testing.T) {
		_, stderr := startServe(t, cfg)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !strings.Contains(stderr.String(), "gatehouse listening"); {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
	})
	if n := len(received()); n != 2 {
		t.Errorf("webhook received %d times across a restart, want 2 (once per certificate)", n)
	}
}

func TestRestartOnlyExpiryAlerts(t *testing.T) {
	var a, b config.Config
	a.ExpiryAlerts.Webhook, b.ExpiryAlerts.Webhook = "http://127.0.0.1:1/", "http://127.0.0.1:1/"
	if got := restartOnly(&a, &b); len(got) != 0 {
		t.Errorf("unchanged: %v", got)
	}
	b.ExpiryAlerts.Thresholds = []config.Duration{config.Duration(time.Hour)}
	if got := restartOnly(&a, &b); !slices.Contains(got, "expiry_alerts") {
		t.Errorf("changed thresholds: %v", got)
	}
}

// The HTTP/2 engine's limits are set when it starts: a reload that
// changes them says they wait for a restart (they were silently ignored).
func TestRestartOnlyHTTP2Limits(t *testing.T) {
	var a, b config.Config
	a.Limits.MaxStreams, b.Limits.MaxStreams = 100, 200
	a.Limits.BackendConnsPerClient, b.Limits.BackendConnsPerClient = 16, 32
	got := restartOnly(&a, &b)
	for _, want := range []string{"limits.max_streams", "limits.backend_conns_per_client"} {
		if !slices.Contains(got, want) {
			t.Errorf("changed %s not reported: %v", want, got)
		}
	}
}
