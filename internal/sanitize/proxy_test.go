package sanitize

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReverseProxyIdentityHeaders drives the gateway's header hygiene
// through a real httputil.ReverseProxy: a client sends spoofed identity
// headers in several spellings and nominates them in Connection, and the
// backend must see exactly the verified value the proxy set.
func TestReverseProxyIdentityHeaders(t *testing.T) {
	const verified = `Hash=abc;Subject="CN=verified";URI=spiffe://example.com/verified`
	seen := make(chan http.Header, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer backend.Close()
	target, err := url.Parse(backend.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		StripIdentityHeaders(pr.Out.Header)
		pr.Out.Header.Set("X-Forwarded-Client-Cert", verified)
	}}
	front := httptest.NewServer(proxy)
	defer front.Close()

	// A raw connection, so the header spellings reach the server unchanged.
	conn, err := net.DialTimeout("tcp", front.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	req := strings.Join([]string{
		"GET /orders HTTP/1.1",
		"Host: gateway.test",
		"Connection: X-Forwarded-Client-Cert, Client-Cert",
		"Connection: keep-alive, X_Forwarded_Client_Cert",
		"X-Forwarded-Client-Cert: Hash=spoof1;URI=spiffe://example.com/admin",
		"x-forwarded-client-cert: Hash=spoof2",
		"X_Forwarded_Client_Cert: Hash=spoof3",
		"x_forwarded_client_cert: Hash=spoof4",
		"Client-Cert: :c3Bvb2Y=:",
		"client_cert: :c3Bvb2Y=:",
		"Client-Cert-Chain: :c3Bvb2Y=:",
		"X-Client-Verify: SUCCESS",
		"X-SSL-Client-S-DN: CN=admin",
		"X-Request-Id: keep-me",
		"", "",
	}, "\r\n")
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var got http.Header
	select {
	case got = <-seen:
	default:
		t.Fatal("backend saw no request")
	}

	if v := got["X-Forwarded-Client-Cert"]; !slices.Equal(v, []string{verified}) {
		t.Errorf("backend X-Forwarded-Client-Cert = %q, want exactly the verified value", v)
	}
	for name, vals := range got {
		if name == "X-Forwarded-Client-Cert" {
			continue
		}
		if IsIdentityHeader(name) {
			t.Errorf("backend received spoofed %s: %q", name, vals)
		}
		for _, v := range vals {
			if strings.Contains(v, "spoof") || strings.Contains(v, "c3Bvb2Y") || strings.Contains(v, "admin") {
				t.Errorf("backend received spoofed value in %s: %q", name, v)
			}
		}
	}
	if v := got.Get("X-Request-Id"); v != "keep-me" {
		t.Errorf("X-Request-Id = %q, want it forwarded", v)
	}
	if t.Failed() {
		dump, _ := json.MarshalIndent(got, "", "  ")
		t.Logf("backend headers: %s", dump)
	}
}
