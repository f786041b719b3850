package pki

import (
	"strings"
	"testing"
	"time"
)

func TestProfileLimits(t *testing.T) {
	ca, err := Init(t.TempDir(), InitOptions{Passphrase: []byte("test passphrase"), Profiles: map[Profile]ProfileLimits{
		ProfileClient: {DefaultValidity: Duration(24 * time.Hour), MaxValidity: Duration(7 * 24 * time.Hour)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	life := func(iss *Issued) time.Duration { return iss.Cert().NotAfter.Sub(iss.Cert().NotBefore) - time.Minute }
	iss, err := ca.Issue(IssueRequest{Profile: ProfileClient, CN: "c"})
	if err != nil || life(iss) != 24*time.Hour {
		t.Fatalf("client default: %v %v", err, iss)
	}
	if _, err := ca.Issue(IssueRequest{Profile: ProfileClient, CN: "c", Validity: 8 * 24 * time.Hour}); err == nil ||
		!strings.Contains(err.Error(), "exceeds the client profile's maximum of 7d") {
		t.Fatalf("beyond the client maximum: %v", err)
	}
	// The server profile has no limits: the CA-wide default applies.
	iss, err = ca.Issue(IssueRequest{Profile: ProfileServer, CN: "s", DNS: []string{"s.example.com"}})
	if err != nil || life(iss) != DefaultLeafValidity {
		t.Fatalf("server default: %v", err)
	}
	// Reopened, the settings hold the limits.
	again, err := OpenPublic(ca.Dir())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if def, max := again.ProfileValidity(ProfileClient); def != 24*time.Hour || max != 7*24*time.Hour {
		t.Fatalf("reopened limits %s %s", def, max)
	}
	// Limits beyond the CA maximum are refused at init.
	_, err = Init(t.TempDir(), InitOptions{Passphrase: []byte("test passphrase"), MaxValidity: 30 * 24 * time.Hour,
		Profiles: map[Profile]ProfileLimits{ProfileServer: {MaxValidity: Duration(60 * 24 * time.Hour)}}})
	if err == nil || !strings.Contains(err.Error(), "exceeds the CA's maximum") {
		t.Fatalf("server max beyond the CA max: %v", err)
	}
}
