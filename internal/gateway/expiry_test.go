package gateway

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/serial"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

// With the clock moved (not slept) to within 30 days of the server
// certificate's expiry, the gateway warns; before that it does not.
func TestExpiryWarning(t *testing.T) {
	p := newPKI(t)
	notAfter := p.server.Cert.NotAfter
	testpki.WriteFile(t, filepath.Join(p.dir, "gatehouse.yaml"), []byte(baseConfig(p, "http://127.0.0.1:1", "")))
	f, err := config.Load(filepath.Join(p.dir, "gatehouse.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		now  time.Time
		want string
	}{
		{notAfter.Add(-31 * 24 * time.Hour), ""},
		{notAfter.Add(-29 * 24 * time.Hour), `msg="served certificate expires soon: renew it" certificate=0 role=leaf subject="CN=localhost"`},
		{notAfter.Add(time.Hour), "served certificate has expired"},
	} {
		var logs bytes.Buffer
		now := tc.now
		_, err := New(f, Options{Log: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if tc.want == "" && strings.Contains(logs.String(), "served certificate") {
			t.Errorf("at %v: unexpected warning: %s", now, logs.String())
		}
		if tc.want != "" && !strings.Contains(logs.String(), tc.want) {
			t.Errorf("at %v: log lacks %q:\n%s", now, tc.want, logs.String())
		}
	}
}

// Each served certificate is warned about once per process, however often
// the gateway reloads (a self-renewing certificate reloads at every
// renewal), and once more when it has expired. A renewed certificate is a
// new certificate and gets its own warning.
func TestExpiryWarningOncePerCertificate(t *testing.T) {
	p := newPKI(t)
	cfg := filepath.Join(p.dir, "gatehouse.yaml")
	testpki.WriteFile(t, cfg, []byte(baseConfig(p, "http://127.0.0.1:1", "")))
	load := func() *config.File {
		f, err := config.Load(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	logs := newLockedBuffer()
	clk := testpki.NewClock() // p.server expires in 24h: within the warning window
	s, err := New(load(), Options{Log: slog.New(slog.NewTextHandler(logs, nil)), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The test intermediate expires with the leaf; count the leaf's lines.
	count := func(msg string) int { return strings.Count(logs.String(), msg+`" certificate=0 role=leaf`) }
	const soon, expired = "served certificate expires soon: renew it", "served certificate has expired: clients will refuse it"
	for range 5 {
		if err := s.Reload(load()); err != nil {
			t.Fatal(err)
		}
		s.warnExpiring(s.snap.Load()) // the 12-hourly check
	}
	if n := count(soon); n != 1 {
		t.Fatalf("%d 'expires soon' warnings after start, 5 reloads and 5 checks; want 1:\n%s", n, logs.String())
	}

	// A renewal: a new certificate in the same files, reloaded.
	renewed := p.inter.Server(t, "localhost", "api.example.com", "other.example.com")
	renewed.Write(t, p.dir, "server")
	for range 3 {
		if err := s.Reload(load()); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(soon); n != 2 || !strings.Contains(logs.String(), serial.Format(renewed.Cert.SerialNumber)) {
		t.Fatalf("%d 'expires soon' warnings after the renewal; want 2, the second for serial %s:\n%s", n,
			serial.Format(renewed.Cert.SerialNumber), logs.String())
	}

	// Past its expiry: one more warning, not repeated.
	clk.Add(renewed.Cert.NotAfter.Add(time.Hour).Sub(clk.Now()))
	for range 3 {
		s.warnExpiring(s.snap.Load())
		if err := s.Reload(load()); err != nil {
			t.Fatal(err)
		}
	}
	if n, m := count(expired), count(soon); n != 1 || m != 2 {
		t.Fatalf("%d 'has expired' and %d 'expires soon' warnings after expiry; want 1 and 2:\n%s", n, m, logs.String())
	}
}
