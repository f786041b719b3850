package gateway

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
)

// engine names an HTTP engine the gateway serves; every defence test runs
// on each, so that no defence lives in one engine only.
type engine struct {
	name string
	h2   bool // HTTP/2 (ALPN h2, Go's HTTP/2 server) or HTTP/1.1 (fasthttp)
}

var engines = []engine{{"h1", false}, {"h2", true}}

// forEachEngine runs f as a subtest per engine.
func forEachEngine(t *testing.T, f func(t *testing.T, e engine)) {
	t.Helper()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { f(t, e) })
	}
}

// send makes one request on a new connection with cfg: on h1 the bytes
// are written exactly (method, target, Host and each header as given); on
// h2 through Go's HTTP/2 client, with :path exactly as given and :authority
// from host. It returns the status and body, and checks that the engine
// asked for is the one that answered.
func send(t *testing.T, e engine, addr string, cfg *tls.Config, method, host, target string, hdr [][2]string, body string) (int, string) {
	t.Helper()
	if !e.h2 {
		var b strings.Builder
		b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n")
		for _, h := range hdr {
			b.WriteString(h[0] + ": " + h[1] + "\r\n")
		}
		if body != "" {
			b.WriteString("Content-Length: " + itoa(len(body)) + "\r\n")
		}
		b.WriteString("Connection: close\r\n\r\n" + body)
		c := cfg.Clone()
		c.NextProtos = []string{"http/1.1"}
		return rawRequest(t, addr, c, b.String())
	}
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "https://"+host+"/", rb)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = "//" + host + target
	req.Host = host
	for _, h := range hdr {
		req.Header[h[0]] = append(req.Header[h[0]], h[1])
	}
	c := httpClient(addr, cfg, true)
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("h2 %s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("asked for HTTP/2, got %s", resp.Proto)
	}
	rbody, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(rbody)
}
