package gateway

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// A small framed response is read whole before its status goes out: a
// backend that closes mid-body gets the client a clean 502 (gatehouse's
// JSON, with HSTS), on both engines.
func TestShortBackendBodyIs502(t *testing.T) {
	p := newPKI(t)
	be := newRawBackend(t)
	be.respond = func(c net.Conn, req *http.Request) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nX-From-Backend: yes\r\n\r\nonly part")
		c.Close()
	}
	g := startGateway(t, p.dir, baseConfig(p, be.url(), ""))
	forEachEngine(t, func(t *testing.T, e engine) {
		c := g.client(p.clientTLS(p.client, "localhost"), e.h2)
		status, body, hdr := get(t, c, "localhost", "/")
		if status != 502 || hdr.Get("Content-Type") != "application/json" || hdr.Get("Strict-Transport-Security") == "" {
			t.Errorf("short body: %d %q %v; want gatehouse's 502 JSON with HSTS", status, body, hdr)
		}
		if hdr.Get("X-From-Backend") != "" {
			t.Errorf("the 502 carries the failed response's headers: %v", hdr)
		}
	})
}

// The HTTP/2 engine sends a small response's HEADERS and DATA in one
// write. When the DATA cannot follow (the client opened no flow-control
// window and waits for the headers first), the headers still go out.
func TestH2HeadersNotHeldBehindFlowControl(t *testing.T) {
	p := newPKI(t)
	be := newRawBackend(t) // answers 200 "ok"
	g := startGateway(t, p.dir, baseConfig(p, be.url(), ""))
	cfg := p.clientTLS(p.client, "localhost")
	cfg.NextProtos = []string{"h2"}
	conn, err := tls.Dial("tcp", g.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if conn.ConnectionState().NegotiatedProtocol != "h2" {
		t.Fatal("h2 not negotiated")
	}
	io.WriteString(conn, http2.ClientPreface)
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "localhost"}, {":path", "/"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	dec := hpack.NewDecoder(4096, nil)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var status string
	for status == "" {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("no response headers while the DATA waits for a window: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			fields, err := dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				t.Fatal(err)
			}
			for _, hf := range fields {
				if hf.Name == ":status" {
					status = hf.Value
				}
			}
		case *http2.DataFrame:
			t.Fatalf("DATA sent beyond a zero window: %q", f.Data())
		}
	}
	if status != "200" {
		t.Fatalf("status %s, want 200", status)
	}
	// Opening the window lets the body follow.
	if err := fr.WriteWindowUpdate(1, 1<<16); err != nil {
		t.Fatal(err)
	}
	var body strings.Builder
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the body: %v (got %q)", err, body.String())
		}
		if d, ok := f.(*http2.DataFrame); ok && d.StreamID == 1 {
			body.Write(d.Data())
			if d.StreamEnded() {
				break
			}
		}
	}
	if body.String() != "ok" {
		t.Fatalf("body %q, want ok", body.String())
	}
}
