package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Issue 9 item 4: every spelling of every forwarding/origin header a
// backend trusts is removed; gatehouse's own values are the only ones.
func TestForwardingHeaderSpellingsAreStripped(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	g := startGateway(t, p.dir, identityConfig(p, be.URL, "[xfcc]"))
	spoof := [][2]string{
		{"X_Forwarded_For", "6.6.6.6"},
		{"x_forwarded_for", "6.6.6.6"},
		{"X_Forwarded_Host", "b.example"},
		{"X_FORWARDED_PROTO", "http"},
		{"X-Forwarded-Port", "80"},
		{"X-Forwarded-Prefix", "/admin/"},
		{"X_Real_IP", "6.6.6.6"},
		{"X-Remote-User", "admin"},
		{"X_Forwarded_User", "admin"},
		{"X-Original-URL", "/admin/users"},
		{"X_Rewrite_URL", "/admin/users"},
		{"True-Client-IP", "6.6.6.6"},
		{"X-Request-Id", "forged-id"},
	}
	// A Trailer naming removed headers: the fasthttp engine refuses it
	// outright (400); otherwise it must not reach the backend.
	trailer := [2]string{"Trailer", "X-Forwarded-Client-Cert, X_Forwarded_For"}
	forEachEngine(t, func(t *testing.T, eng engine) {
		for _, tc := range []struct {
			name string
			anon bool
		}{{"verified client", false}, {"anonymous on public route", true}} {
			t.Run(tc.name, func(t *testing.T) {
				leaf, path := p.client, "/billing/x"
				if tc.anon {
					leaf, path = nil, "/public"
				}
				if status, _ := send(t, eng, g.addr, p.clientTLS(leaf, "localhost"), "GET", "localhost", path,
					append(append([][2]string{}, spoof...), trailer), ""); status != 400 && status != 200 {
					t.Errorf("with a Trailer: status %d", status)
				}
				status, body := send(t, eng, g.addr, p.clientTLS(leaf, "localhost"), "GET", "localhost", path, spoof, "")
				if status != 200 {
					t.Fatalf("status %d: %s\n%s", status, body, g.auditLog())
				}
				var e echoed
				json.Unmarshal([]byte(body), &e)
				for name, values := range e.Header {
					folded := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
					for _, v := range values {
						for _, bad := range []string{"6.6.6.6", "b.example", "admin", "forged"} {
							if strings.Contains(v, bad) {
								t.Errorf("backend saw %s: %s", name, v)
							}
						}
					}
					if folded == "x-forwarded-proto" && (len(values) != 1 || values[0] != "https") {
						t.Errorf("backend saw %s: %q", name, values)
					}
					if folded == "trailer" {
						t.Errorf("backend saw a Trailer naming removed headers: %q", values)
					}
				}
				if got := e.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
					t.Errorf("X-Forwarded-For = %q", got)
				}
				if got := e.Header.Get("X-Forwarded-Host"); got != "localhost" {
					t.Errorf("X-Forwarded-Host = %q", got)
				}
			})
		}
	})
	for _, r := range be.requests() {
		for name := range r.Header {
			if strings.EqualFold(name, "trailer") {
				t.Errorf("backend saw a Trailer: %q", r.Header[name])
			}
		}
	}
}

// Issue 9 item 3: a second host hidden in the authority is refused, and
// the backend only ever sees the normalized host.
func TestHiddenSecondHostInAuthority(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	g := startGateway(t, p.dir, baseConfig(p, be.URL, ""))
	for _, tc := range []struct {
		host   string
		status int
	}{
		{"api.example.com:443,other.example.com", 400},
		{"api.example.com:,other.example.com", 400},
		{"api.example.com,other.example.com", 400},
		{"api.example.com other.example.com", 400},
		{"api.example.com:443 ", 200}, // trailing OWS is not part of the field value (RFC 9110 5.5)
		{"api.example.com:99999", 400},
		{"api.example.com:0", 400},
		{"user@api.example.com", 400},
		{"api.example.com:443", 200},
		{"API.example.com.", 200},
	} {
		t.Run(tc.host, func(t *testing.T) {
			before := len(be.requests())
			status, body := rawRequest(t, g.addr, p.clientTLS(p.client, "api.example.com"),
				"GET /x HTTP/1.1\r\nHost: "+tc.host+"\r\nConnection: close\r\n\r\n")
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			seen := be.requests()[before:]
			if tc.status != 200 {
				if len(seen) != 0 {
					t.Fatalf("backend saw the request: %+v", seen[0])
				}
				return
			}
			if len(seen) != 1 || seen[0].Header.Get("X-Forwarded-Host") != "api.example.com" {
				t.Fatalf("backend saw %+v, want X-Forwarded-Host api.example.com", seen)
			}
		})
	}
	// The same over HTTP/2, where the authority is :authority.
	c := g.client(p.clientTLS(p.client, "api.example.com"), true)
	for _, host := range []string{"api.example.com:443,other.example.com", "api.example.com:,other.example.com"} {
		before := len(be.requests())
		req, _ := http.NewRequest("GET", "https://"+g.addr+"/x", nil)
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			// The client itself refused to send it: nothing reached us.
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != 400 || len(be.requests()) != before {
			t.Errorf("h2 :authority %q: status %d, backend requests %d", host, resp.StatusCode, len(be.requests())-before)
		}
	}
}

// Issue 9 item 7: encoded dots and slashes are refused whatever else the
// raw path holds; the bare name of a protected "/admin/" route goes to
// that route, never to the public "/".
func TestPathRuleHoldsBesideReescapedBytes(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	g := startGateway(t, p.dir, identityConfig(p, be.URL, "[]"))
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/public|/%2e%2e/admin/users", 400},
		{"/public{/%2E%2E/admin/users", 400},
		{"/public\"/%2e%2e/admin/users", 400},
		{"/public`/%2e%2e/admin/users", 400},
		{"/public\xff/%2e%2e/admin/users", 400},
		{"/public|%2fadmin", 400},
		{"/admin", 403},
		{"/public|x", 200},
	} {
		forEachEngine(t, func(t *testing.T, e engine) {
			t.Run(tc.path, func(t *testing.T) {
				before := len(be.requests())
				status, body := send(t, e, g.addr, p.clientTLS(nil, "localhost"), "GET", "localhost", tc.path, nil, "")
				if status != tc.status {
					t.Fatalf("status %d, want %d: %s", status, tc.status, body)
				}
				if tc.status != 200 && len(be.requests()) != before {
					t.Fatal("the backend saw a refused request")
				}
			})
		})
	}
}
