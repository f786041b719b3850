package sanitize

import (
	"net/http"
	"testing"
)

func TestHeaderStripper(t *testing.T) {
	s := NewHeaderStripper([]string{"X-Tenant", "x_partner_id"})
	strip := []string{
		// Issue 9 item 4: underscore spellings of forwarding headers.
		"X-Forwarded-For", "X_Forwarded_For", "x_forwarded_host", "X_FORWARDED_PROTO", "x-forwarded-port",
		"X-Forwarded-Prefix", "Forwarded", "FORWARDED", "X-Real-IP", "x_real_ip", "X-Remote-User",
		"X_Remote_User", "X-Forwarded-User", "X-Original-URL", "x_original_url", "X-Rewrite-URL",
		"True-Client-IP", "CF-Connecting-IP", "X-Request-Id", "HTTP2-Settings", "X-HTTP-Method-Override",
		// Identity headers, as before.
		"X-Forwarded-Client-Cert", "x_forwarded_client_cert", "Client-Cert", "client_cert_chain",
		"X-Client-Verify", "X_SSL_Client_Cert", "Ssl-Client-Cert",
		// Configured extras, every spelling.
		"X-Tenant", "x_tenant", "X-PARTNER-ID", "x-partner-id",
	}
	keep := []string{"Accept", "Content-Type", "Authorization", "X-Forwarded", "Forwardedx", "X-Tenant-Name", "User-Agent", "X-Real", "Cookie"}
	for _, n := range strip {
		if !s.Strips(n) || !s.StripsBytes([]byte(n)) {
			t.Errorf("%q is not stripped", n)
		}
	}
	for _, n := range keep {
		if s.Strips(n) || s.StripsBytes([]byte(n)) {
			t.Errorf("%q is stripped", n)
		}
	}
	var zero *HeaderStripper
	if !zero.Strips("X_Forwarded_For") || zero.Strips("X-Tenant") {
		t.Error("a nil stripper must strip the built-in lists only")
	}
}

func TestStripHeaderAndTrailer(t *testing.T) {
	h := http.Header{
		"X_forwarded_for":  {"6.6.6.6"},
		"X_forwarded_host": {"b.example"},
		"Accept":           {"*/*"},
		"Trailer":          {"X-Forwarded-Client-Cert, X-Checksum", "x_real_ip"},
	}
	NewHeaderStripper(nil).StripHeader(h)
	if len(h) != 2 || h.Get("Accept") != "*/*" || h.Get("Trailer") != "X-Checksum" {
		t.Errorf("after strip: %v", h)
	}
	h = http.Header{"Trailer": {"X-Forwarded-Client-Cert"}}
	NewHeaderStripper(nil).StripHeader(h)
	if _, ok := h["Trailer"]; ok {
		t.Errorf("a Trailer naming only stripped headers survived: %v", h)
	}
}

func BenchmarkStripsBytes(b *testing.B) {
	s := NewHeaderStripper([]string{"X-Tenant"})
	names := [][]byte{[]byte("Accept"), []byte("User-Agent"), []byte("X_Forwarded_For"), []byte("Content-Type")}
	b.ReportAllocs()
	for b.Loop() {
		for _, n := range names {
			s.StripsBytes(n)
		}
	}
}
