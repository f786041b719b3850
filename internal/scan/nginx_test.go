package scan

import (
	"crypto/x509"
	"slices"
	"testing"
)

// suiteNames returns the OpenSSL names of the suites offered with v.
func suiteNames(r *Report, v uint16) []string {
	var out []string
	for _, p := range r.Protocols {
		if p.Version == v {
			for _, s := range p.Suites {
				out = append(out, s.OpenSSL)
			}
		}
	}
	return out
}

func check(r *Report, id string) *Check {
	for i := range r.MTLS {
		if r.MTLS[i].ID == id {
			return &r.MTLS[i]
		}
	}
	return nil
}

func vuln(r *Report, id string) *Vuln {
	for i := range r.Vulns {
		if r.Vulns[i].ID == id {
			return &r.Vulns[i]
		}
	}
	return nil
}

func hasCap(r *Report, grade string) bool {
	return slices.ContainsFunc(r.Grade.Caps, func(c Cap) bool { return c.Grade == grade })
}

func TestWeakNginx(t *testing.T) {
	t.Parallel() // testssl.sh takes most of a minute: run it beside the other
	n := startNginx(t)
	roots := x509.NewCertPool()
	roots.AddCert(n.root.Cert)
	r := scanFor(t, Options{Addr: n.weakAddr, ServerName: "weak.test", Roots: roots, HTTP: true, Fetch: true})
	ts := runTestssl(t, n.weakAddr, "weak.test")
	compareTestssl(t, r, ts)
	compareSSLScan(t, r, n.weakAddr, "weak.test")

	for _, v := range []uint16{VersionTLS10, VersionTLS11, VersionTLS12} {
		if !r.offered(v) {
			t.Errorf("%s not found offered", VersionName(v))
		}
	}
	if r.offered(VersionTLS13) || r.offered(VersionSSL3) || r.offered(VersionSSL2) {
		t.Errorf("protocols: %+v", r.Protocols)
	}
	want := []string{"ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA", "AES128-SHA", "AES256-SHA256", "CAMELLIA128-SHA"}
	if got := suiteNames(r, VersionTLS12); !slices.Equal(got, want) {
		t.Errorf("TLS 1.2 suites in server order = %v, want %v", got, want)
	}
	c := r.Certificates
	if !c.Expired || c.Trusted || !c.Incomplete || !c.NameMatch {
		t.Errorf("certificate: expired=%v trusted=%v incomplete=%v name=%v (%s)", c.Expired, c.Trusted, c.Incomplete, c.NameMatch, c.TrustError)
	}
	if len(c.Fetched) == 0 || c.Fetched[0] != n.aiaURL {
		t.Errorf("AIA not fetched: %v", c.Fetched)
	}
	if c.CRL != "revoked" {
		t.Errorf("CRL verdict %q, want revoked", c.CRL)
	}
	// --no-fetch with the intermediate in --ca: still found incomplete,
	// and nothing is fetched.
	inter := x509.NewCertPool()
	inter.AddCert(n.inter.Cert)
	nf := scanFor(t, Options{Addr: n.weakAddr, ServerName: "weak.test", Roots: roots, Intermediates: inter})
	if !nf.Certificates.Incomplete || len(nf.Certificates.Fetched) != 0 || nf.Certificates.CRL != "" {
		t.Errorf("--no-fetch: incomplete=%v fetched=%v crl=%q", nf.Certificates.Incomplete, nf.Certificates.Fetched, nf.Certificates.CRL)
	}
	// Revoked caps at F; the expiry makes it T with F kept beside it.
	if r.Grade.Grade != "T" || r.Grade.GradeIgnoringTrust != "F" {
		t.Errorf("grade %s (%s), want T (F)", r.Grade.Grade, r.Grade.GradeIgnoringTrust)
	}
	for _, g := range []string{"B", "T", "F"} {
		if !hasCap(r, g) {
			t.Errorf("no %s cap in %+v", g, r.Grade.Caps)
		}
	}
	if r.HTTP == nil || r.HTTP.HSTS != "" {
		t.Errorf("HSTS: %+v", r.HTTP)
	}
	// optional_no_ca: asked for, never verified.
	for id, want := range map[string]Status{"requested": Info, "no_cert": Warn, "self_signed": Fail, "impostor_ca": Fail} {
		if c := check(r, id); c == nil || c.Status != want {
			t.Errorf("mTLS %s = %+v, want %s", id, c, want)
		}
	}
	if got := check(r, "requested").Detail; got != "requested; acceptable CAs: CN=Scan Test Root,O=gatehouse test" {
		t.Errorf("requested: %s", got)
	}
	if v := vuln(r, "poodle_tls"); v == nil || v.Status != NotVulnerable || v.Method != "probed" {
		t.Errorf("poodle_tls = %+v, want a probed not vulnerable", v)
	}
	for id, want := range map[string]VulnStatus{"beast": Exposed, "lucky13": Exposed, "heartbleed": NotVulnerable,
		"ccs_injection": NotVulnerable, "robot": NotVulnerable} {
		if v := vuln(r, id); v == nil || v.Status != want {
			t.Errorf("%s = %+v, want %s", id, v, want)
		}
	}
	if r.Behaviour.ClientRenegotiation != "refused" || !r.Behaviour.SecureRenegotiation {
		t.Errorf("renegotiation: %+v", r.Behaviour)
	}
}

func TestModernNginx(t *testing.T) {
	n := startNginx(t)
	roots := x509.NewCertPool()
	roots.AddCert(n.root.Cert)
	r := scanFor(t, Options{Addr: n.modernAddr, ServerName: "modern.test", Roots: roots, HTTP: true, Fetch: true})
	compareSSLScan(t, r, n.modernAddr, "modern.test")
	if r.Grade.Grade != "A+" {
		t.Errorf("grade %s, want A+ (caps %+v, warnings %v)", r.Grade.Grade, r.Grade.Caps, r.Grade.Warnings)
	}
	if !r.offered(VersionTLS13) || !r.offered(VersionTLS12) || r.offered(VersionTLS11) {
		t.Errorf("protocols: %+v", r.Protocols)
	}
	if r.DHBits != 2048 || r.DHCommonPrime != "RFC 7919 ffdhe2048" {
		t.Errorf("DH bits = %d, common prime %q, want 2048 (ffdhe2048)", r.DHBits, r.DHCommonPrime)
	}
	if !slices.Contains(r.Groups, "x25519") {
		t.Errorf("groups %v", r.Groups)
	}
	// An RSA key in TLS 1.3 signs with RSA-PSS only.
	if want := []string{"rsa_pss_rsae_sha256", "rsa_pss_rsae_sha384", "rsa_pss_rsae_sha512"}; !slices.Equal(r.SignatureAlgorithms13, want) {
		t.Errorf("TLS 1.3 signature algorithms %v, want %v", r.SignatureAlgorithms13, want)
	}
	if c := check(r, "requested"); c == nil || c.Detail != "the server does not request a client certificate" {
		t.Errorf("requested: %+v", c)
	}
	if c := r.Certificates; c.CRL != "good" || c.OCSP != "good" || len(c.Fetched) != 2 {
		t.Errorf("revocation: CRL %q, OCSP %q, fetched %v", c.CRL, c.OCSP, c.Fetched)
	}
	// ssl_session_cache shared:MozSSL: session IDs resume.
	if !r.Behaviour.SessionIDs || !r.Behaviour.SessionIDResumption || !r.Behaviour.Resumption {
		t.Errorf("session IDs: %+v", r.Behaviour)
	}
	if !slices.Contains(r.Behaviour.ALPN, "h2") {
		t.Errorf("ALPN %v", r.Behaviour.ALPN)
	}
}
