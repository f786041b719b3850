package enroll

import (
	"context"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/pki"
)

// Renewal keeps the renewed certificate's lifetime exactly, also for a
// certificate of a minute or less (which once renewed as one of the
// profile's default lifetime, 24h here), and never exceeds the profile's
// maximum.
func TestRenewKeepsLifetime(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	for _, life := range []time.Duration{30 * time.Second, time.Minute, 61 * time.Second, 2 * time.Minute, 10 * time.Minute, 25 * time.Hour} {
		t.Run(life.String(), func(t *testing.T) {
			key, _ := pki.KeyECDSAP256.Generate()
			iss, err := e.ca.SignKey(pki.KeyRequest{PublicKey: key.Public(), Profile: pki.ProfileClient,
				Subject: pkix.Name{CommonName: "short"}, Lifetime: life})
			if err != nil {
				t.Fatal(err)
			}
			if got := iss.Cert().NotAfter.Sub(iss.Cert().NotBefore); got != life {
				t.Fatalf("issued lifetime %s; want %s", got, life)
			}
			if !iss.Cert().NotAfter.After(time.Now().Add(-time.Second)) {
				t.Fatalf("issued certificate already expired at %s", iss.Cert().NotAfter)
			}
			iss.Key = key
			chain, err := e.client.Renew(ctx, tlsCert(iss), key)
			if err != nil {
				t.Fatal(err)
			}
			c := chain[0]
			if got := c.NotAfter.Sub(c.NotBefore); got != life {
				t.Fatalf("renewed lifetime %s; want the old one's, %s", got, life)
			}
			if c.NotBefore.After(time.Now()) || !c.NotAfter.After(time.Now().Add(-time.Second)) {
				t.Fatalf("renewed certificate not valid now: %s to %s", c.NotBefore, c.NotAfter)
			}
		})
	}

	// A certificate issued when the profile allowed longer renews at the
	// profile's maximum (48h, plus the minute of backdating), not longer.
	settings := filepath.Join(e.dir, pki.SettingsFile)
	b, err := os.ReadFile(settings)
	if err != nil {
		t.Fatal(err)
	}
	wider := strings.Replace(string(b), `"max_validity": "2d"`, `"max_validity": "4d"`, 1)
	if wider == string(b) {
		t.Fatalf("no client max_validity of 2d in %s:\n%s", settings, b)
	}
	if err := os.WriteFile(settings, []byte(wider), 0o600); err != nil {
		t.Fatal(err)
	}
	wide, err := pki.Open(e.dir, testPass)
	if err != nil {
		t.Fatal(err)
	}
	defer wide.Close()
	iss, err := wide.Issue(pki.IssueRequest{Profile: pki.ProfileClient, CN: "long", Validity: 72 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	chain, err := e.client.Renew(ctx, tlsCert(iss), iss.Key)
	if err != nil {
		t.Fatal(err)
	}
	if got := chain[0].NotAfter.Sub(chain[0].NotBefore); got != 48*time.Hour+time.Minute {
		t.Fatalf("renewed lifetime %s; want the profile's maximum 48h (+1m backdate)", got)
	}
}
