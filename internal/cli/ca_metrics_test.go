package cli

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/telemetry/notify"
)

// caServeWith starts `gatehouse ca serve` with extra flags and returns its
// stdout once both ready lines are printed.
func caServeWith(t *testing.T, env map[string]string, dir string, extra ...string) (metricsURL string) {
	t.Helper()
	args := append([]string{"ca", "serve", "--dir", dir, "--listen", "127.0.0.1:0"}, extra...)
	url, _ := runCAServe(t, env, regexp.MustCompile(`metrics at (http://127\.0\.0\.1:\d+/metrics)`), args)
	return url
}

// webhookReceiver records JSON posts on 127.0.0.1.
type webhookReceiver struct {
	url string
	mu  sync.Mutex
	got []notify.Payload
}

func newWebhookReceiver(t *testing.T) *webhookReceiver {
	t.Helper()
	w := &webhookReceiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var p notify.Payload
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &p); err != nil {
			t.Errorf("webhook body %s: %v", b, err)
		}
		w.mu.Lock()
		w.got = append(w.got, p)
		w.mu.Unlock()
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	w.url = "http://" + ln.Addr().String() + "/hook"
	return w
}

func (w *webhookReceiver) payloads() []notify.Payload {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]notify.Payload(nil), w.got...)
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// newTestCA makes a CA with a client certificate expiring in 10 days, a
// server certificate in 90, and a revoked client certificate; it returns
// the CA directory, the environment and the short-lived serial.
func newTestCA(t *testing.T) (dir string, env map[string]string, soon string) {
	t.Helper()
	tmp := t.TempDir()
	dir = filepath.Join(tmp, "pki")
	env = map[string]string{passphraseEnv: caTestPass}
	caMust(t, env, "ca", "init", "--dir", dir, "--name", "Metrics CA")
	caMust(t, env, "ca", "issue", "--dir", dir, "--profile", "client", "--cn", "partner-soon", "--validity", "10d", "--out", filepath.Join(tmp, "soon"))
	caMust(t, env, "ca", "issue", "--dir", dir, "--profile", "server", "--cn", "api.example.com", "--dns", "api.example.com", "--validity", "90d", "--out", filepath.Join(tmp, "api"))
	caMust(t, env, "ca", "issue", "--dir", dir, "--profile", "client", "--cn", "partner-gone", "--validity", "20d", "--out", filepath.Join(tmp, "gone"))
	out := caMust(t, env, "ca", "list", "--dir", dir, "--json")
	var list []listEntry
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("ca list: %v\n%s", err, out)
	}
	for _, e := range list {
		switch {
		case strings.Contains(e.Subject, "partner-soon"):
			soon = e.Serial
		case strings.Contains(e.Subject, "partner-gone"):
			caMust(t, env, "ca", "revoke", "--dir", dir, "--serial", e.Serial)
		}
	}
	return dir, env, soon
}

func TestCAServeMetricsAndWebhook(t *testing.T) {
	dir, env, soon := newTestCA(t)
	hook := newWebhookReceiver(t)
	url := caServeWith(t, env, dir, "--metrics-listen", "127.0.0.1:0", "--warn-within", "15d",
		"--webhook", hook.url, "--webhook-thresholds", "30d,14d")
	body := scrape(t, url)
	for _, want := range []string{
		`gatehouse_ca_certificates{profile="client",status="valid"} 1`,
		`gatehouse_ca_certificates{profile="client",status="revoked"} 1`,
		`gatehouse_ca_certificates{profile="server",status="valid"} 1`,
		`gatehouse_ca_soonest_expiry_timestamp_seconds{profile="client"}`,
		`gatehouse_ca_certificate_not_after_timestamp_seconds{profile="client",serial="` + soon + `",subject_cn="partner-soon"}`,
		`gatehouse_certificate_not_after_timestamp_seconds{file="` + filepath.Join(dir, "ca.pem") + `",issuer_cn="Metrics CA",role="ca_root"`,
		`gatehouse_ca_crl_number `,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("ca metrics lack %s", want)
		}
	}
	// ca serve's own OCSP signer (a day, renewed at half-life) never alerts.
	if strings.Contains(body, `gatehouse_ca_certificate_not_after_timestamp_seconds{profile="ocsp-signer"`) {
		t.Error("the self-renewing OCSP signer has an expiry gauge")
	}
	// The server certificate (90 days) is outside --warn-within: no gauge of its own.
	if strings.Contains(body, "api.example.com") {
		t.Error("a certificate outside the warning window has a per-certificate gauge")
	}
	got := hook.payloads()
	if len(got) != 1 || got[0].Certificate.Serial != soon || got[0].Threshold != "14d" || got[0].Source != "ca" ||
		got[0].Certificate.Role != "issued_client" || got[0].Certificate.SubjectCN != "partner-soon" {
		t.Errorf("webhook: %+v", got)
	}
}

func TestCAServeMetricsLoopbackOnly(t *testing.T) {
	dir, env, _ := newTestCA(t)
	code, _, errs := caRun(t, env, "ca", "serve", "--dir", dir, "--listen", "127.0.0.1:0", "--metrics-listen", "0.0.0.0:0")
	if code != ExitUsage || !strings.Contains(errs, "not a loopback address") {
		t.Errorf("non-loopback metrics: exit %d: %s", code, errs)
	}
}
