package gateway

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Issue 9 item 5: a client that sends headers and a little of its body
// and then stalls, or trickles it, is cut off (408) after the body idle
// timeout or below the minimum rate, on both engines (per stream in
// HTTP/2), and the backend request it held ends with it.
func TestSlowBodiesAreCutOff(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	var held atomic.Int32
	be.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		held.Add(1)
		defer held.Add(-1)
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "done")
	})
	g := startGateway(t, p.dir, baseConfig(p, be.URL, "timeouts: { body_idle: 300ms }\nlimits: { min_body_rate: 4KiB }\n"))
	payload := strings.Repeat("x", 100<<10)
	forEachEngine(t, func(t *testing.T, e engine) {
		for _, tc := range []struct {
			name  string
			write func(w io.Writer)
		}{
			{"stall", func(w io.Writer) {
				io.WriteString(w, payload[:10])
				time.Sleep(3 * time.Second)
			}},
			{"trickle", func(w io.Writer) {
				for i := 0; i < 30; i++ { // 1 KiB/s, under the 4 KiB/s minimum
					if _, err := io.WriteString(w, payload[:100]); err != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				start := time.Now()
				status := slowPost(t, g, p, e, len(payload), tc.write)
				took := time.Since(start)
				if status != 408 && status != 0 {
					t.Fatalf("status %d, want 408", status)
				}
				if took > 2500*time.Millisecond {
					t.Fatalf("the slow body held the request %v", took)
				}
				deadline := time.Now().Add(2 * time.Second)
				for held.Load() != 0 {
					if time.Now().After(deadline) {
						t.Fatal("the backend request is still held")
					}
					time.Sleep(20 * time.Millisecond)
				}
			})
		}
	})
	if !strings.Contains(g.auditLog(), "slower than limits.min_body_rate") || !strings.Contains(g.auditLog(), `"status":408`) {
		t.Errorf("audit log lacks the slow body refusals")
	}
}

// One HTTP/2 connection with many streams holds at most
// limits.backend_conns_per_client backend requests at once.
func TestBackendRequestsPerClientConnection(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	var now, peak atomic.Int32
	release := make(chan struct{})
	be.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := now.Add(1)
		defer now.Add(-1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		<-release
		io.WriteString(w, "ok")
	})
	g := startGateway(t, p.dir, baseConfig(p, be.URL, "limits: { backend_conns_per_client: 3, max_streams: 50 }\n"))
	c := g.client(p.clientTLS(p.client, "localhost"), true)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get("https://localhost/x")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	close(release)
	wg.Wait()
	if got := peak.Load(); got != 3 {
		t.Fatalf("one client connection held %d backend requests at once, want 3", got)
	}
}

// slowPost sends a POST announcing n body bytes and lets write produce
// them; it returns the status (0 when the gateway only closed) as soon as
// the gateway answers, whatever the writer is still doing.
func slowPost(t *testing.T, g *gw, p *pkiSet, e engine, n int, write func(io.Writer)) int {
	t.Helper()
	if e.h2 {
		pr, pw := io.Pipe()
		go func() { write(pw); pw.Close() }()
		defer pr.Close()
		req, _ := http.NewRequest("POST", "https://localhost/upload", pr)
		req.ContentLength = int64(n)
		resp, err := g.client(p.clientTLS(p.client, "localhost"), true).Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	cfg := p.clientTLS(p.client, "localhost")
	cfg.NextProtos = []string{"http/1.1"}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", g.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n", n)
	go write(conn)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
