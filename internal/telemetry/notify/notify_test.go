package notify

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry/metrics"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

// receiver is a webhook receiver on 127.0.0.1 that fails the next
// `fail` posts with 503, then records.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	fail     int
	status   int // answer after the failures; 0 means 200
	got      []Payload
	attempts int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.attempts++
		if req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("content type %q", req.Header.Get("Content-Type"))
		}
		if r.fail > 0 {
			r.fail--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if r.status != 0 {
			w.WriteHeader(r.status)
			return
		}
		var p Payload
		body, _ := io.ReadAll(req.Body)
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("payload %s: %v", body, err)
		}
		r.got = append(r.got, p)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) payloads() []Payload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Payload(nil), r.got...)
}

const day = 24 * time.Hour

func TestOncePerWindow(t *testing.T) {
	clk := testpki.NewClock()
	rcv := newReceiver(t)
	state := filepath.Join(t.TempDir(), "alerts.json")
	newNotifier := func() *Notifier {
		return &Notifier{URL: rcv.URL + "/hook/SECRET-TOKEN", Thresholds: []time.Duration{day, 30 * day, 7 * day},
			StatePath: state, Source: "gateway", Now: clk.Now, Backoff: time.Millisecond, Log: slog.New(slog.DiscardHandler)}
	}
	n := newNotifier()
	cert := metrics.Certificate{Role: metrics.RoleServer, File: "api.pem", Subject: "CN=api", SubjectCN: "api", Serial: "1f",
		NotAfter: clk.Now().Add(40 * day)}
	far := cert
	far.Serial, far.NotAfter = "2e", clk.Now().Add(400*day)
	certs := []metrics.Certificate{cert, far}
	ctx := context.Background()
	check := func() {
		t.Helper()
		if err := n.Check(ctx, certs); err != nil {
			t.Fatal(err)
		}
	}
	check()
	if got := rcv.payloads(); len(got) != 0 {
		t.Fatalf("sent %d before any window: %+v", len(got), got)
	}
	clk.Add(11 * day) // 29 days left: the 30d window
	check()
	check()
	got := rcv.payloads()
	if len(got) != 1 || got[0].Threshold != "30d" || got[0].Event != "certificate_expiring" || got[0].Certificate.Serial != "1f" ||
		got[0].Source != "gateway" || got[0].ThresholdSeconds != int64(30*day/time.Second) ||
		!strings.Contains(got[0].Text, `certificate "CN=api" (serial 1f, api.pem) expires in 29 days`) {
		t.Fatalf("30d window: %+v", got)
	}

	// A restart reads the record and does not send again.
	n = newNotifier()
	check()
	if len(rcv.payloads()) != 1 {
		t.Fatal("a restarted notifier sent the 30d window again")
	}

	// 7d, then 1d; crossing both at once sends only the smaller.
	clk.Add(23 * day) // 6 days left
	check()
	clk.Add(5*day + 12*time.Hour) // 12 hours left
	check()
	clk.Add(day) // expired
	check()
	check()
	got = rcv.payloads()
	var windows []string
	for _, p := range got {
		windows = append(windows, p.Threshold)
	}
	if strings.Join(windows, ",") != "30d,7d,1d,expired" {
		t.Errorf("windows sent: %v", windows)
	}
	if last := got[len(got)-1]; last.Event != "certificate_expired" || !strings.Contains(last.Text, "EXPIRED") {
		t.Errorf("expired: %+v", last)
	}

	// A renewed certificate (new serial) is a new key; the old one is
	// dropped from the record.
	renewed := cert
	renewed.Serial, renewed.NotAfter = "3a", clk.Now().Add(6*day)
	certs = []metrics.Certificate{renewed}
	check()
	if got := rcv.payloads(); len(got) != 5 || got[4].Certificate.Serial != "3a" || got[4].Threshold != "7d" {
		t.Errorf("renewed: %+v", got[len(got)-1])
	}
	data, err := os.ReadFile(state)
	if err != nil || strings.Contains(string(data), "|1f|") || !strings.Contains(string(data), "|3a|") {
		t.Errorf("record %s: %v", data, err)
	}
}

func TestRetries(t *testing.T) {
	clk := testpki.NewClock()
	rcv := newReceiver(t)
	n := &Notifier{URL: rcv.URL, Thresholds: []time.Duration{7 * day}, Now: clk.Now, Attempts: 3, Backoff: time.Millisecond,
		Log: slog.New(slog.DiscardHandler)}
	certs := []metrics.Certificate{{Subject: "CN=a", Serial: "1", NotAfter: clk.Now().Add(day)}}
	ctx := context.Background()

	// Two failures, then success within the three attempts.
	rcv.fail = 2
	if err := n.Check(ctx, certs); err != nil {
		t.Fatal(err)
	}
	if len(rcv.payloads()) != 1 || rcv.attempts != 3 {
		t.Fatalf("attempts %d, payloads %d", rcv.attempts, len(rcv.payloads()))
	}

	// Every attempt failing: an error, nothing recorded, sent at the next
	// check once the receiver is back.
	certs[0].Serial = "2"
	rcv.fail = 3
	err := n.Check(ctx, certs)
	if err == nil || !strings.Contains(err.Error(), "after 3 attempts") {
		t.Fatalf("all attempts failing: %v", err)
	}
	if err := n.Check(ctx, certs); err != nil {
		t.Fatal(err)
	}
	if len(rcv.payloads()) != 2 {
		t.Fatalf("not sent after the receiver recovered: %d", len(rcv.payloads()))
	}

	// A 4xx is not retried.
	certs[0].Serial = "3"
	rcv.mu.Lock()
	rcv.status, rcv.attempts = http.StatusBadRequest, 0
	rcv.mu.Unlock()
	if err := n.Check(ctx, certs); err == nil || !strings.Contains(err.Error(), "not retried") || rcv.attempts != 1 {
		t.Errorf("4xx: %v after %d attempts", err, rcv.attempts)
	}
}

// The webhook URL's path and query often hold a token: errors name only
// the host.
func TestURLNotLogged(t *testing.T) {
	n := &Notifier{URL: "http://127.0.0.1:1/services/T0/B0/SECRET?token=SECRET", Thresholds: []time.Duration{day},
		Attempts: 1, Log: slog.New(slog.DiscardHandler)}
	err := n.Check(context.Background(), []metrics.Certificate{{Serial: "1", NotAfter: time.Now()}})
	if err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("error %v", err)
	}
}

func TestBadRecord(t *testing.T) {
	p := filepath.Join(t.TempDir(), "alerts.json")
	os.WriteFile(p, []byte("{not json"), 0o600)
	n := &Notifier{URL: "http://127.0.0.1:1/", Thresholds: []time.Duration{day}, StatePath: p}
	if err := n.Check(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "fix or remove the file") {
		t.Errorf("a corrupt record: %v", err)
	}
}
