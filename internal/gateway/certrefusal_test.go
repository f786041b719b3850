package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

// Issue 12 item 1: where the handshake can complete (mode optional, or
// client_auth.refusal: http), a refused certificate gets an HTTP answer
// that says why, as a reason code and nothing more; the backend never
// sees the request, on any route; the audit record names the fix.
func TestRefusedCertificateAnsweredInHTTP(t *testing.T) {
	requireOpenSSL(t)
	requireCurl(t)
	p := newPKI(t)
	be := newBackend(t)
	opensslRecipeCert(t, p, "bare", "openssl-client")
	foreign := p.foreign.Client(t, "foreign-client")
	foreign.Write(t, p.dir, "foreign")
	expired := p.inter.Leaf(t, testpki.LeafOptions{CN: "expired", NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	expired.Write(t, p.dir, "expired")
	p.client.Write(t, p.dir, "good")

	curl := func(g *gw, name, path string) string {
		t.Helper()
		_, port, _ := strings.Cut(g.addr, ":")
		args := []string{"-sS", "--resolve", "localhost:" + port + ":127.0.0.1", "--cacert", "ca.pem", "-w", " %{http_code}"}
		if name != "" {
			args = append(args, "--cert", name+".pem", "--key", name+"-key.pem")
		}
		out, err := run(t, p.dir, "curl", append(args, "https://localhost:"+port+path)...)
		if err != nil {
			t.Fatalf("curl %s %s: %v %s", name, path, err, out)
		}
		return out
	}

	optional := startGateway(t, p.dir, identityConfig(p, be.URL, "[xfcc]"))
	for _, tc := range []struct{ cert, path, code string }{
		{"bare", "/billing/x", "missing_client_auth_eku"},
		{"bare", "/public", "missing_client_auth_eku"}, // a public route too: the client is told, not served anonymously
		{"foreign", "/billing/x", "untrusted_issuer"},
		{"expired", "/billing/x", "expired"},
	} {
		before := len(be.requests())
		out := curl(optional, tc.cert, tc.path)
		want := `{"error":"client certificate not accepted","reason":"` + tc.code + `","status":400}`
		if !strings.Contains(out, want) || !strings.HasSuffix(out, " 400") {
			t.Errorf("%s %s: got %q, want %s", tc.cert, tc.path, out, want)
		}
		if len(be.requests()) != before {
			t.Errorf("%s %s: the backend saw the request", tc.cert, tc.path)
		}
	}
	for _, ok := range []struct{ cert, path string }{{"good", "/billing/x"}, {"", "/public"}} {
		if out := curl(optional, ok.cert, ok.path); !strings.HasSuffix(out, " 200") {
			t.Errorf("%q %s: %s, want 200", ok.cert, ok.path, out)
		}
	}
	log := optional.auditLog()
	for _, want := range []string{`"event":"certificate_refused"`, "extendedKeyUsage=clientAuth", "openssl-client", `"path":"/public"`} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %s:\n%s", want, log)
		}
	}

	// mode require keeps the handshake alert by default; refusal: http
	// answers there too, also for a client without a certificate.
	yaml := baseConfig(p, be.URL, "")
	require := startGateway(t, p.dir, yaml)
	_, port, _ := strings.Cut(require.addr, ":")
	if out, err := run(t, p.dir, "curl", "-sS", "--resolve", "localhost:"+port+":127.0.0.1", "--cacert", "ca.pem",
		"--cert", "bare.pem", "--key", "bare-key.pem", "https://localhost:"+port+"/x"); err == nil {
		t.Errorf("mode require answered a refused certificate in HTTP by default: %s", out)
	}
	inHTTP := startGateway(t, p.dir, strings.Replace(yaml, "trusted_cas: [ca.pem]", "trusted_cas: [ca.pem]\n  refusal: http", 1))
	if out := curl(inHTTP, "bare", "/x"); !strings.Contains(out, `"reason":"missing_client_auth_eku"`) || !strings.HasSuffix(out, " 400") {
		t.Errorf("require + refusal http, bare certificate: %s", out)
	}
	if out := curl(inHTTP, "", "/x"); !strings.Contains(out, `"reason":"no_certificate"`) || !strings.HasSuffix(out, " 400") {
		t.Errorf("require + refusal http, no certificate: %s", out)
	}
	if out := curl(inHTTP, "good", "/x"); !strings.HasSuffix(out, " 200") {
		t.Errorf("require + refusal http, good certificate: %s", out)
	}
}
