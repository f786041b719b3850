package revocation

import (
	"context"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

// waitFor polls cond for up to 5 s.
func waitFor(tb testing.TB, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	tb.Fatal("condition not met within 5s")
}

// With ocsp: prefer and a valid CRL, a hanging OCSP responder never makes
// a request wait: the CRL decides, the responder is asked in the
// background, and its answer (here: revoked) counts once it arrives.
func TestOCSPPreferNeverWaitsWhenCRLDecides(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	root := testpki.NewRoot(t, "root")
	resp := newTestResponder(t, root, e.clock)
	leaf := root.Leaf(t, testpki.LeafOptions{CN: "c", OCSPServer: []string{resp.URL}})
	chain := verified(t, leaf, root)
	path := e.writeCRL("root.crl", e.crl(root, 1), false)
	c := e.newChecker(Config{CRLs: []string{path}, TrustedCAs: []*x509.Certificate{root.Cert},
		OCSP: OCSPPrefer, OCSPTimeout: 2 * time.Second}, nil)

	resp.setDelay(time.Hour) // hangs until the OCSP timeout
	for i := range 20 {
		start := time.Now()
		wantErr(t, c.Check(ctx, chain), nil)
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("check %d waited %v on a hanging responder although the CRL decides", i, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := resp.hits.Load(); n != 1 {
		t.Errorf("%d queries while one was in flight, want 1", n)
	}

	// The background query times out and is remembered as failed.
	waitFor(t, func() bool { e := c.ocsp.get(leaf.Cert.Raw); return e != nil && e.status == ocspFailed })
	wantErr(t, c.Check(ctx, chain), nil)

	// The responder answers again, now revoked: the background answer wins.
	resp.setDelay(0)
	resp.set(leaf.Cert.SerialNumber, ocspAnswer{status: ocsp.Revoked, revokedAt: e.clock.Now().Add(-time.Minute)})
	e.clock.Add(ocspRetryAfter + time.Second) // the failure's retry time
	wantErr(t, c.Check(ctx, chain), nil)      // starts the query
	waitFor(t, func() bool { return c.Check(ctx, chain) != nil })
	wantErr(t, c.Check(ctx, chain), ErrRevoked)

	// Without a valid CRL, prefer still asks and waits (bounded).
	c2 := e.newChecker(Config{TrustedCAs: []*x509.Certificate{root.Cert}, OCSP: OCSPPrefer}, nil)
	wantErr(t, c2.Check(ctx, chain), ErrRevoked)
}

// A CRL server that answers 304 Not Modified forever freezes nothing: 304
// means unchanged while the CRL held is in force; once it is past its
// nextUpdate the request is unconditional, and a 304 to it is an error.
func TestCRL304(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	root := testpki.NewRoot(t, "root")
	cl := root.Client(t, "c")
	chain := verified(t, cl, root)
	var body atomic.Pointer[[]byte]
	var conditional, unconditional atomic.Int32
	var answer304Always atomic.Bool
	first := e.crl(root, 1)
	body.Store(&first)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`) // a broken cache: one ETag whatever the content
		if r.Header.Get("If-None-Match") != "" {
			conditional.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		unconditional.Add(1)
		if answer304Always.Load() {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write(*body.Load())
	}))
	defer srv.Close()
	c := e.newChecker(Config{CRLs: []string{srv.URL}, TrustedCAs: []*x509.Certificate{root.Cert}, Refresh: 10 * time.Minute}, nil)

	next := root.CRL(t, 2, e.clock.Now().Add(50*time.Minute), e.clock.Now().Add(2*time.Hour), cl.Cert.SerialNumber)
	body.Store(&next)
	for range 5 { // within nextUpdate: 304 is "unchanged"
		e.clock.Add(10 * time.Minute)
		if err := c.refreshAll(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, c.Check(ctx, chain), nil)
	if conditional.Load() != 5 {
		t.Errorf("%d conditional requests, want 5", conditional.Load())
	}
	e.clock.Add(10 * time.Minute) // the held CRL's nextUpdate: ask for the whole CRL
	if err := c.refreshAll(ctx, false); err != nil {
		t.Fatal(err)
	}
	wantErr(t, c.Check(ctx, chain), ErrRevoked)
	if unconditional.Load() != 2 {
		t.Errorf("%d unconditional requests, want 2 (startup, nextUpdate)", unconditional.Load())
	}

	// A server that answers 304 even to an unconditional request fails
	// the fetch (logged), and the CRL held runs out at its nextUpdate.
	answer304Always.Store(true)
	e.clock.Add(2 * time.Hour)
	if err := c.refreshAll(ctx, false); err == nil || !strings.Contains(err.Error(), "304 Not Modified to a request without validators") {
		t.Fatalf("304 to an unconditional request: %v", err)
	}
	wantErr(t, c.Check(ctx, verified(t, root.Client(t, "other"), root)), ErrUnavailable)
}

// A CRL over max_crl_size is refused before it is parsed, from a URL
// (with or without Content-Length) and from a file; a forged CRL under
// the bound costs its bytes, not an index: its entries are never decoded.
func TestCRLSizeBoundAndMemory(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	root := testpki.NewRoot(t, "root")
	big := bigCRL(t, root, e.clock.Now(), 60_000) // about 2.3 MB
	t.Logf("CRL of %d entries: %d bytes", 60_000, len(big))

	limit := int64(len(big) - 1)
	chunked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush() // no Content-Length: chunked
		w.Write(big)
	}))
	defer chunked.Close()
	sized := newFileServer(t, big)
	for name, src := range map[string]string{
		"file": e.writeCRL("big.crl", big, false), "URL": sized.URL, "chunked URL": chunked.URL,
	} {
		_, err := New(ctx, e.config(Config{CRLs: []string{src}, TrustedCAs: []*x509.Certificate{root.Cert}, MaxCRLSize: limit}), nil)
		if err == nil || !strings.Contains(err.Error(), "larger than max_crl_size") {
			t.Errorf("%s: CRL over the bound: %v", name, err)
		}
	}

	// Memory, from the runtime's own accounting: the bytes allocated to
	// load a genuine CRL (read, verify, index) and a forged one of the
	// same size (read, header, refused).
	allocated := func(f func()) uint64 {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		f()
		runtime.ReadMemStats(&m1)
		return m1.TotalAlloc - m0.TotalAlloc
	}
	genuinePath := e.writeCRL("genuine.crl", big, false)
	genuine := allocated(func() {
		c, err := New(ctx, e.config(Config{CRLs: []string{genuinePath}, TrustedCAs: []*x509.Certificate{root.Cert}}), nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
	impostor := testpki.NewRoot(t, "root") // the root's name, another key
	forgedBig := bigCRL(t, impostor, e.clock.Now(), 60_000)
	forgedPath := e.writeCRL("forged.crl", forgedBig, false)
	forged := allocated(func() {
		if _, err := New(ctx, e.config(Config{CRLs: []string{forgedPath}, TrustedCAs: []*x509.Certificate{root.Cert}}), nil); err == nil {
			t.Fatal("forged CRL accepted")
		}
	})
	t.Logf("allocated: genuine %d KiB, forged %d KiB, CRL %d KiB", genuine>>10, forged>>10, len(big)>>10)
	if forged > uint64(3*len(big)) {
		t.Errorf("a refused CRL of %d bytes cost %d bytes: its entries were decoded before the signature was checked", len(big), forged)
	}
	if genuine < uint64(5*len(big)) {
		t.Logf("note: the genuine CRL cost less than expected (%d bytes)", genuine)
	}
}

// refresh: 1s fetches every source every second, scheduled from the
// start of its previous fetch. Two slow sources: the second one's fetch
// starts 300 ms after the poll tick, and used to wait for the tick after
// next (about 2 s).
func TestRefreshSchedule(t *testing.T) {
	root := testpki.NewRoot(t, "root")
	synctest.Test(t, func(t *testing.T) {
		now := time.Now()
		der := root.CRL(t, 1, now, now.Add(time.Hour))
		var hits [2]atomic.Int32
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[len(r.URL.Path)%2].Add(1) // "/a" and "/bb"
			time.Sleep(300 * time.Millisecond)
			w.Write(der)
		}))
		// In a synctest bubble the network must be in memory, so that
		// waiting on it lets the fake clock run.
		ln := newPipeListener()
		srv.Listener = ln
		srv.Start()
		defer srv.Close()
		client := &http.Client{Transport: &http.Transport{DialContext: ln.DialContext}}
		defer client.CloseIdleConnections()
		log, _ := newLog()
		c, err := New(context.Background(), Config{CRLs: []string{"http://crl.test/a", "http://crl.test/bb"},
			TrustedCAs: []*x509.Certificate{root.Cert}, Refresh: time.Second, HTTPClient: client, Log: log}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		time.Sleep(10*time.Second + 100*time.Millisecond)
		cancel()
		<-done
		c.Close()
		for i := range hits {
			if n := hits[i].Load(); n < 10 || n > 12 {
				t.Errorf("source %d: %d fetches in 10 s with refresh: 1s, want 11 (startup + 10)", i, n)
			}
		}
	})
}

// pipeListener is a net.Listener over net.Pipe.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func (l *pipeListener) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	a, b := net.Pipe()
	select {
	case l.conns <- b:
		return a, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
