package gateway

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
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
