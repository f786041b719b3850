package sanitize

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestIsIdentityHeader(t *testing.T) {
	for _, name := range []string{
		"X-Forwarded-Client-Cert", "x-forwarded-client-cert", "X_Forwarded_Client_Cert", "x_FORWARDED-client_CERT",
		"X-Forwarded-Client-Cert-Chain",
		"Client-Cert", "client_cert", "CLIENT-CERT-CHAIN", "Client_Cert_Chain",
		"X-Client-Cert", "X-Client-Verify", "x_client_dn", "X-Client-",
		"X-SSL-Client-Cert", "X-SSL-Client-S-DN", "X-Ssl-Cert", "x_ssl_client_verify",
		"Ssl-Client-Cert", "SSL_CLIENT_S_DN",
		"X-Forwarded-Tls-Client-Cert", "X-Forwarded-Tls-Client-Cert-Info", "x_forwarded_tls_client_cert",
		"X-Amzn-Mtls-Clientcert", "X-Amzn-Mtls-Clientcert-Leaf", "x_amzn_mtls_clientcert_serial_number",
		"X-ARR-ClientCert", "Cf-Client-Cert-Sha256",
	} {
		if !IsIdentityHeader(name) {
			t.Errorf("IsIdentityHeader(%q) = false, want true", name)
		}
	}
	for _, name := range []string{
		"", "Content-Type", "Authorization", "X-Forwarded-For", "X-Forwarded-Proto", "Forwarded",
		"Client", "Client-Certs", "Client-Cert-Chains", "X-Client", "X-Clientx", "X-SSL", "Ssl-Client",
		"X-Forwarded-Client", "Cert", "X-Cert", "Xclient-cert", "X.Client-Cert", "X Client Cert",
		"Client-Cert ", " Client-Cert", "Client\u2010Cert", "X-Amzn-Trace-Id",
	} {
		if IsIdentityHeader(name) {
			t.Errorf("IsIdentityHeader(%q) = true, want false", name)
		}
	}
}

func TestStripIdentityHeaders(t *testing.T) {
	h := http.Header{
		"X-Forwarded-Client-Cert": {"spoof"},
		"x-forwarded-client-cert": {"spoof"}, // not canonical: h.Del would miss it
		"X_forwarded_client_cert": {"spoof"},
		"Client-Cert":             {":c3Bvb2Y=:"},
		"client_cert_chain":       {":c3Bvb2Y=:"},
		"X-Ssl-Client-S-Dn":       {"CN=admin"},
		"Content-Type":            {"application/json"},
		"X-Request-Id":            {"abc"},
		"X-Forwarded-For":         {"192.0.2.1"},
	}
	StripIdentityHeaders(h)
	want := []string{"Content-Type", "X-Forwarded-For", "X-Request-Id"}
	if got := slices.Sorted(maps.Keys(h)); !slices.Equal(got, want) {
		t.Fatalf("after strip: %v, want %v", got, want)
	}
	StripIdentityHeaders(nil) // must not panic
}

func TestIsIdentityHeaderDoesNotAllocate(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = IsIdentityHeader("X_Forwarded_Client_Cert") }); n != 0 {
		t.Fatalf("allocated %v times", n)
	}
}

// FuzzStripIdentityHeaders checks that after stripping no key normalizes to
// an identity header name and that every other header is untouched.
func FuzzStripIdentityHeaders(f *testing.F) {
	f.Add("X-Forwarded-Client-Cert\nx_client_cert\nContent-Type\nX-SSL-Client-Verify\nAccept")
	f.Add("client_cert\nClient-Cert-Chain\nclient-certs\nX-Amzn-Mtls-Clientcert\nX-Amzn-Trace-Id")
	f.Add("X_FORWARDED_TLS_CLIENT_CERT_INFO\nSsl-Client-S-Dn\nx-arr-clientcert\nCf-Client-Cert-Der-Base64\nForwarded")
	f.Fuzz(func(t *testing.T, names string) {
		h := http.Header{}
		for i, n := range strings.Split(names, "\n") {
			h[n] = append(h[n], "v"+string(rune('0'+i%10)))
		}
		before := maps.Clone(h)
		StripIdentityHeaders(h)
		for name, vals := range before {
			normalized := strings.ReplaceAll(asciiOnlyLower(name), "_", "-")
			identity := normalized == "client-cert" || normalized == "client-cert-chain" || normalized == "x-arr-clientcert"
			for _, p := range identityPrefixes {
				identity = identity || strings.HasPrefix(normalized, p)
			}
			got, kept := h[name]
			switch {
			case identity && kept:
				t.Fatalf("identity header %q survived", name)
			case !identity && (!kept || !slices.Equal(got, vals)):
				t.Fatalf("header %q changed: %q -> %q (kept %v)", name, vals, got, kept)
			}
		}
	})
}

// asciiOnlyLower lower-cases ASCII letters only, so that the reference does
// not fold Unicode look-alikes that the real function rightly ignores.
func asciiOnlyLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
