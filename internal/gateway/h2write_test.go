package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
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

// A backend that sends the headers of a small response and then stalls
// mid-body is cut off when timeouts.backend_response runs out (it covers
// the whole small response, read before the status goes out): the client
// gets gatehouse's 504 at once, not a request that hangs until it gives up.
func TestStalledSmallBodyTimesOut(t *testing.T) {
	p := newPKI(t)
	be := newRawBackend(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	be.respond = func(c net.Conn, req *http.Request) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nX-From-Backend: yes\r\n\r\nonly part")
		<-release // stalls until the test ends
		c.Close()
	}
	g := startGateway(t, p.dir, baseConfig(p, be.url(), "timeouts: { backend_response: 500ms }\n"))
	forEachEngine(t, func(t *testing.T, e engine) {
		c := g.client(p.clientTLS(p.client, "localhost"), e.h2)
		c.Timeout = 10 * time.Second
		start := time.Now()
		status, body, hdr := get(t, c, "localhost", "/")
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("answered after %v", d)
		}
		if status != 504 || hdr.Get("Content-Type") != "application/json" || hdr.Get("X-From-Backend") != "" {
			t.Errorf("stalled body: %d %q %v; want gatehouse's 504 JSON", status, body, hdr)
		}
	})
}

// A streamed response (chunked here, as SSE is) whose backend goes quiet
// mid-stream is cut off after timeouts.backend_idle without a read: the
// client's body ends in an error, never as if whole, and the audit record
// says why. Without the bound the stream hangs until the client gives up.
func TestStalledStreamIsCut(t *testing.T) {
	p := newPKI(t)
	be := newRawBackend(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	be.respond = func(c net.Conn, req *http.Request) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n")
		// Two events within the bound: the timer restarts at each read.
		for _, ev := range []string{"data: one\n\n", "data: two\n\n"} {
			fmt.Fprintf(c, "%x\r\n%s\r\n", len(ev), ev)
			time.Sleep(300 * time.Millisecond)
		}
		<-release // then stalls until the test ends
		c.Close()
	}
	g := startGateway(t, p.dir, baseConfig(p, be.url(), "timeouts: { backend_idle: 500ms }\n"))
	forEachEngine(t, func(t *testing.T, e engine) {
		c := g.client(p.clientTLS(p.client, "localhost"), e.h2)
		c.Timeout = 10 * time.Second
		resp, err := c.Get("https://localhost/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		start := time.Now()
		body, err := io.ReadAll(resp.Body)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the stalled stream ended after %v", d)
		}
		if err == nil || errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Client.Timeout") {
			t.Errorf("stalled stream: body %q, err %v; want it cut short by the gateway", body, err)
		}
		if !strings.Contains(string(body), "data: one") || !strings.Contains(string(body), "data: two") {
			t.Errorf("events before the stall were lost: %q", body)
		}
	})
	if a := g.auditLog(); strings.Count(a, "mid-stream (timeouts.backend_idle)") != 2 {
		t.Errorf("audit records do not say the backend stalled, on both engines:\n%s", a)
	}
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

// recordCounter counts the TLS records that arrive on a connection.
type recordCounter struct {
	net.Conn
	mu      sync.Mutex
	hdr     []byte // partial record header
	skip    int    // record body bytes still to come
	records int
}

func (c *recordCounter) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	for b := p[:n]; len(b) > 0; {
		if c.skip > 0 {
			k := min(c.skip, len(b))
			c.skip -= k
			b = b[k:]
			continue
		}
		k := min(5-len(c.hdr), len(b))
		c.hdr = append(c.hdr, b[:k]...)
		b = b[k:]
		if len(c.hdr) == 5 {
			c.records++
			c.skip = int(c.hdr[3])<<8 | int(c.hdr[4])
			c.hdr = c.hdr[:0]
		}
	}
	return n, err
}

func (c *recordCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.records
}

// A small response, and a refusal, leave in one TLS record: HEADERS and
// DATA are written together (the coalescer), not one record each.
func TestH2ResponseInOneRecord(t *testing.T) {
	p := newPKI(t)
	be := newRawBackend(t) // answers 200 "ok"
	g := startGateway(t, p.dir, baseConfig(p, be.url(), ""))
	raw, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	rc := &recordCounter{Conn: raw}
	cfg := p.clientTLS(p.client, "localhost")
	cfg.NextProtos = []string{"h2"}
	conn := tls.Client(rc, cfg)
	defer conn.Close()
	if err := conn.Handshake(); err != nil || conn.ConnectionState().NegotiatedProtocol != "h2" {
		t.Fatalf("handshake: %v, ALPN %q", err, conn.ConnectionState().NegotiatedProtocol)
	}
	io.WriteString(conn, http2.ClientPreface)
	fr := http2.NewFramer(conn, conn)
	fr.WriteSettings()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	stream := uint32(1)
	// exchange sends one request and returns the status and the number
	// of records its response took.
	exchange := func(authority string) (string, int) {
		hb.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", authority}, {":path", "/"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		id := stream
		stream += 2
		before := rc.count()
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
		status := ""
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("stream %d: %v", id, err)
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					fr.WriteSettingsAck()
				}
				before = rc.count()
			case *http2.HeadersFrame:
				if f.StreamID == id {
					status = "headers"
				}
			case *http2.DataFrame:
				if f.StreamID == id && f.StreamEnded() {
					return status, rc.count() - before
				}
			}
		}
	}
	// Timing decides each one (a held write is released after 1 ms if
	// nothing follows), so on a loaded machine not every response is
	// coalesced; without the coalescer none is.
	for _, authority := range []string{"localhost", "other.example.com"} {
		one := 0
		for range 20 {
			status, records := exchange(authority)
			if status != "headers" {
				t.Fatalf("%s: no HEADERS before the end of the stream", authority)
			}
			if records == 1 {
				one++
			}
		}
		if one == 0 {
			t.Errorf("%s: no response of 20 came in one TLS record", authority)
		}
	}
}

// limits.max_streams is the HTTP/2 engine's, set when it starts: a reload
// leaves it as it was (the reload names it among the settings that wait
// for a restart, cli.restartOnly). If it ever becomes reloadable, this
// test and that list change together.
func TestMaxStreamsWaitsForRestart(t *testing.T) {
	p := newPKI(t)
	be := newRawBackend(t)
	g := startGateway(t, p.dir, baseConfig(p, be.url(), "limits: { max_streams: 50 }\n"))
	// Serve has started (and made its engines) once a request is served:
	// only then is the reload one that a running gateway gets.
	if status, _, _ := get(t, g.client(p.clientTLS(p.client, "localhost"), true), "localhost", "/"); status != 200 {
		t.Fatalf("before the reload: %d", status)
	}
	reload(t, g, p.dir, baseConfig(p, be.url(), "limits: { max_streams: 200 }\n"))
	cfg := p.clientTLS(p.client, "localhost")
	cfg.NextProtos = []string{"h2"}
	conn, err := tls.Dial("tcp", g.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, http2.ClientPreface)
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %T, want SETTINGS", f)
	}
	if v, ok := sf.Value(http2.SettingMaxConcurrentStreams); !ok || v != 50 {
		t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS after the reload: %d (%v), want 50 until a restart", v, ok)
	}
}
