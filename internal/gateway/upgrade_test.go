package gateway

import (
	"strings"
	"testing"
)

// Issue 9 item 2: an h2c upgrade (or any protocol a route does not name)
// never reaches the backend, even one that would accept it, so HTTP/2
// cannot be tunnelled past the per-request checks; HTTP2-Settings is
// stripped; the connection is closed after the answer.
func TestUpgradeOnlyWhatTheRouteNames(t *testing.T) {
	p := newPKI(t)
	be := newRawBackend(t)
	g := startGateway(t, p.dir, identityConfig(p, be.url(), "[xfcc]")+`  - name: no-upgrades
    path: /plain/
    backend: `+be.url()+`
    require_client_cert: false
    upgrades: []
`)
	const h = "Host: localhost\r\n"
	for _, tc := range []struct {
		name, raw string
	}{
		{"h2c", "GET / HTTP/1.1\r\n" + h + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"},
		{"h2c upper case", "GET / HTTP/1.1\r\n" + h + "Connection: upgrade\r\nUpgrade: H2C\r\n\r\n"},
		{"h2c in a list", "GET / HTTP/1.1\r\n" + h + "Connection: Upgrade\r\nUpgrade: websocket, h2c\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"},
		{"h2c with a body", "POST / HTTP/1.1\r\n" + h + "Connection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\nhi"},
		{"unknown protocol", "GET / HTTP/1.1\r\n" + h + "Connection: Upgrade\r\nUpgrade: foo/1\r\n\r\n"},
		{"websocket where upgrades: []", "GET /plain/ws HTTP/1.1\r\n" + h + "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(be.requests())
			// A second request on the same connection would come after
			// the switch: the gateway must not read it as HTTP.
			got := exchange(t, g.addr, p.clientTLS(nil, "localhost"), tc.raw+"GET /admin/x HTTP/1.1\r\n"+h+"\r\n")
			if len(got) != 1 || got[0] == 101 {
				t.Fatalf("answers %v, want one non-101 answer and a closed connection", got)
			}
			for _, raw := range be.requests()[before:] {
				lower := strings.ToLower(raw)
				if strings.Contains(lower, "upgrade") || strings.Contains(lower, "http2-settings") || strings.Contains(lower, "/admin/") {
					t.Errorf("backend saw:\n%q", raw)
				}
			}
		})
	}
	if !strings.Contains(g.auditLog(), "upgrade to h2c refused") {
		t.Errorf("audit log does not say the h2c upgrade was refused:\n%s", g.auditLog())
	}
}
