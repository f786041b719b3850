package scan

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

// silentListener accepts connections on 127.0.0.1 and does to each what
// end says once the client's first bytes (its ClientHello) have arrived.
func silentListener(t *testing.T, end func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				var b [512]byte
				c.Read(b[:])
				end(c.(*net.TCPConn))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// resetConn closes c with an RST (SO_LINGER 0).
func resetConn(c *net.TCPConn) {
	c.SetLinger(0)
	c.Close()
}

// A server that hangs, resets or closes without an alert shows no
// refusal: the client-certificate checks must be inconclusive, never
// passed.
func TestSilenceIsNoRefusal(t *testing.T) {
	cases := []struct {
		name, want string
		end        func(c *net.TCPConn)
	}{
		{"never answers", "no answer in the handshake: timeout", func(*net.TCPConn) {}},
		{"resets", "no answer in the handshake: connection reset", resetConn},
		{"closes", "no answer in the handshake: connection closed", func(c *net.TCPConn) { c.CloseWrite() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr := silentListener(t, tc.end)
			s := &scanner{opts: Options{Addr: addr, Timeout: 500 * time.Millisecond}, now: time.Now}
			s.p = &prober{addr: addr, timeout: s.opts.Timeout, sem: make(chan struct{}, 1), dial: (&net.Dialer{}).DialContext}
			self, err := mintSelfSigned(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			h := s.outcome(context.Background(), self)
			st, how := judgeRefusal(h)
			if st != Inconclusive || how != tc.want {
				t.Errorf("judgeRefusal = %s %q, want %s %q (handshake error: %v)", st, how, Inconclusive, tc.want, h.err)
			}
		})
	}
}

// silentTLSServer is a TLS server that asks for a client certificate and,
// once the client has sent its certificate (or none), hangs or resets the
// connection, whoever the client is.
func silentTLSServer(t *testing.T, maxVersion uint16, end func(c *net.TCPConn)) (addr string, roots *testpki.CA) {
	t.Helper()
	root := testpki.NewRoot(t, "Silent Root")
	leaf := root.Server(t, "silent.test")
	stop := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") }))
	base := &tls.Config{
		Certificates: []tls.Certificate{leaf.TLSCertificate()},
		ClientAuth:   tls.RequestClientCert,
		MaxVersion:   maxVersion,
		NextProtos:   []string{"http/1.1"},
	}
	srv.TLS = base.Clone()
	srv.TLS.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		cfg := base.Clone()
		cfg.VerifyConnection = func(tls.ConnectionState) error {
			if tcp, ok := hello.Conn.(*net.TCPConn); ok {
				end(tcp)
			}
			select { // a hung server: held until the test ends
			case <-stop:
			case <-time.After(30 * time.Second):
			}
			return nil
		}
		return cfg, nil
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) }) // runs first: frees the hung handshakes
	return srv.Listener.Addr().String(), root
}

// TestSilentClientAuth scans servers that hang (TLS 1.2: in the
// handshake) or reset (TLS 1.3: after it, at the HTTP request) every
// client once it has sent its certificate (or its empty certificate
// message): no mTLS check may pass, the
// grade keeps a warning for each, so --fail-below A fails.
func TestSilentClientAuth(t *testing.T) {
	cases := []struct {
		name    string
		version uint16
		end     func(c *net.TCPConn)
		want    string
	}{
		{"hangs in the TLS 1.2 handshake", tls.VersionTLS12, func(*net.TCPConn) {}, "no answer in the handshake: timeout"},
		// The client may see the RST or, when its request crossed it, EOF.
		{"resets after the TLS 1.3 handshake", tls.VersionTLS13, resetConn, "no HTTP answer: connection "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr, root := silentTLSServer(t, tc.version, tc.end)
			r := scanFor(t, Options{Addr: addr, ServerName: "silent.test", Roots: testpki.Pool(root), HTTP: true, Timeout: time.Second})
			if c := check(r, "requested"); c == nil || c.Status != Info {
				t.Errorf("requested = %+v, want %s", c, Info)
			}
			for _, id := range []string{"no_cert", "self_signed", "impostor_ca"} {
				c := check(r, id)
				if c == nil || c.Status != Inconclusive || !strings.HasPrefix(c.Detail, tc.want) {
					t.Errorf("mTLS %s = %+v, want %s %q", id, c, Inconclusive, tc.want)
				}
			}
			n := 0
			for _, w := range r.Grade.Warnings {
				if strings.HasPrefix(w, "mTLS: ") && strings.Contains(w, "inconclusive") {
					n++
				}
			}
			if n != 3 {
				t.Errorf("%d inconclusive mTLS warnings, want 3: %v", n, r.Grade.Warnings)
			}
			if !GradeBelow(r.Grade.Grade, "A") {
				t.Errorf("grade %s, want below A (--fail-below A must fail): caps %+v", r.Grade.Grade, r.Grade.Caps)
			}
		})
	}
}

// An internal_error alert is a server that failed, not one that refused:
// a client check it answers is inconclusive.
func TestInternalErrorIsNoRefusal(t *testing.T) {
	err := errors.New("remote error: tls: internal error")
	h := &handshake{err: err, alert: alertFrom(err)}
	if st, how := judgeRefusal(h); st != Inconclusive || !strings.Contains(how, "internal error") {
		t.Fatalf("internal_error judged %s (%s), want inconclusive", st, how)
	}
	refused := errors.New("remote error: tls: bad certificate")
	if st, _ := judgeRefusal(&handshake{err: refused, alert: alertFrom(refused)}); st != Pass {
		t.Fatalf("bad_certificate judged %s, want pass (refused)", st)
	}
}

// A probed "not vulnerable" seen with internal_error answers is not a
// verdict; a finding (vulnerable) and an inferred verdict stand.
func TestJudgedInternalErrors(t *testing.T) {
	nv := Vuln{ID: "crime", Method: "probed", Status: NotVulnerable, Detail: "compression refused"}
	if got := judged(nv, 0); got != nv {
		t.Errorf("no internal_error: %+v, want it unchanged", got)
	}
	if got := judged(nv, 2); got.Status != NotTested || !strings.Contains(got.Detail, "internal_error 2 time(s)") || !strings.Contains(got.Detail, "compression refused") {
		t.Errorf("with internal_error: %+v, want not tested, saying why and what the probe saw", got)
	}
	for _, v := range []Vuln{
		{ID: "heartbleed", Method: "probed", Status: Vulnerable, Detail: "memory"},
		{ID: "rc4", Method: "inferred", Status: NotVulnerable, Detail: "no RC4"},
	} {
		if got := judged(v, 3); got != v {
			t.Errorf("%+v became %+v", v, got)
		}
	}
	// A "not vulnerable" that rests on what the listing found is not a
	// verdict when the listing met internal_error.
	rc4 := Vuln{ID: "rc4", Method: "inferred", Status: NotVulnerable, Detail: "no RC4 suite accepted"}
	if got := judgedListed(rc4, 0); got != rc4 {
		t.Errorf("listing without internal_error: %+v, want it unchanged", got)
	}
	if got := judgedListed(rc4, 4); got.Status != NotTested || !strings.Contains(got.Detail, "while its protocols and suites were listed") || !strings.Contains(got.Detail, "no RC4 suite accepted") {
		t.Errorf("listing with internal_error: %+v, want not tested, saying why", got)
	}
	if v := (Vuln{ID: "rc4", Status: Vulnerable, Detail: "RC4 suites accepted"}); judgedListed(v, 4) != v {
		t.Errorf("a finding was changed: %+v", judgedListed(v, 4))
	}
}
