package gateway

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Server-sent events reach the client event by event, each before the
// backend writes the next, on both engines.
func TestServerSentEvents(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	next := make(chan struct{})
	be.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "id: %d\ndata: event %d\n\n", i, i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Second):
				return
			}
		}
	})
	g := startGateway(t, p.dir, baseConfig(p, be.URL, ""))
	forEachEngine(t, func(t *testing.T, e engine) {
		resp, err := g.client(p.clientTLS(p.client, "localhost"), e.h2).Get("https://localhost/events")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" || resp.Header.Get("Strict-Transport-Security") == "" {
			t.Errorf("Content-Type %q, HSTS %q", ct, resp.Header.Get("Strict-Transport-Security"))
		}
		br := bufio.NewReader(resp.Body)
		for i := 0; i < 3; i++ {
			var ev []string
			for {
				line, err := br.ReadString('\n') // blocks forever if the gateway buffers
				if err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				if line == "\n" {
					break
				}
				ev = append(ev, strings.TrimSuffix(line, "\n"))
			}
			if want := fmt.Sprintf("id: %d,data: event %d", i, i); strings.Join(ev, ",") != want {
				t.Fatalf("event %d = %q, want %q", i, ev, want)
			}
			next <- struct{}{}
		}
	})
}

// A large upload is streamed to the backend whole and unchanged (Content-
// Length and chunked), and one over max_body is cut at the limit with 413
// even when no Content-Length announced it.
func TestLargeStreamedUpload(t *testing.T) {
	p := newPKI(t)
	be := newBackend(t)
	be.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			w.WriteHeader(499)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"n": n, "sha256": hex.EncodeToString(h.Sum(nil)),
			"te": r.TransferEncoding, "cl": r.ContentLength})
	})
	g := startGateway(t, p.dir, baseConfig(p, be.URL, `  - name: small
    path: /small/
    backend: `+be.URL+`
    max_body: 1MiB
limits: { max_body: 32MiB }
`))
	data := make([]byte, 12<<20)
	rand.Read(data)
	sum := sha256.Sum256(data)
	forEachEngine(t, func(t *testing.T, e engine) {
		c := g.client(p.clientTLS(p.client, "localhost"), e.h2)
		for _, chunked := range []bool{false, true} {
			var body io.Reader = strings.NewReader(string(data))
			if chunked {
				body = io.MultiReader(body) // hides the length: chunked / no content-length
			}
			req, _ := http.NewRequest("POST", "https://localhost/upload", body)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("chunked=%v: %v", chunked, err)
			}
			var got struct {
				N      int64  `json:"n"`
				SHA256 string `json:"sha256"`
			}
			json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
			if resp.StatusCode != 200 || got.N != int64(len(data)) || got.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("chunked=%v: status %d, backend got %d bytes %s", chunked, resp.StatusCode, got.N, got.SHA256)
			}
		}
		// Over max_body without a Content-Length: cut while streaming.
		pr, pw := io.Pipe()
		go func() {
			defer pw.Close()
			for i := 0; i < 4; i++ {
				if _, err := pw.Write(data[:1<<20]); err != nil {
					return
				}
			}
		}()
		req, _ := http.NewRequest("POST", "https://localhost/small/up", pr)
		resp, err := c.Do(req)
		if err != nil {
			// The gateway may reset the upload after answering; the
			// audit record must still say why.
			t.Logf("upload over max_body: %v", err)
		} else {
			resp.Body.Close()
			if resp.StatusCode != 413 {
				t.Errorf("streamed upload over max_body: status %d, want 413", resp.StatusCode)
			}
		}
		pr.Close()
		if !strings.Contains(g.auditLog(), "request body larger than max_body") {
			t.Errorf("audit log lacks the max_body refusal")
		}
	})
}
