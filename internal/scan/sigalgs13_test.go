package scan

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

// startSServer starts openssl s_server on a free 127.0.0.1 port with
// args and returns its address; the test's cleanup stops it.
func startSServer(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl is not installed (see scripts/packages.txt): %v", err)
	}
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{"s_server", "-accept", addr, "-quiet"}, args...)...)
	// s_server reads stdin: keep it open and silent.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("openssl s_server: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		stdin.Close()
		cancel()
		<-exited
	})
	if err := waitListening(addr, 10*time.Second, exited); err != nil {
		t.Fatalf("openssl s_server %v: %v", args, err)
	}
	return addr
}

// rsaServer writes an RSA 2048 server certificate for name, issued by an
// ECDSA root (so the chain's signature is not one the leaf's key makes).
func rsaServer(t *testing.T, dir, name string) (cert, key string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	root := testpki.NewRoot(t, "Sigalgs Root")
	leaf := root.Leaf(t, testpki.LeafOptions{CN: name, DNS: []string{name}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
		EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Key: k})
	return leaf.Write(t, dir, filepath.Base(name))
}

// TestSigAlgs13 finds openssl s_server's TLS 1.3 signature schemes: the
// RSA-PSS ones its -sigalgs allows for an RSA key, and every RSA-PSS one
// without -sigalgs. The ECDSA root signs the chain: the probe must not
// mistake that for a scheme the server signs with.
func TestSigAlgs13(t *testing.T) {
	dir := t.TempDir()
	cert, key := rsaServer(t, dir, "sigalgs.test")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-sigalgs", "rsa_pss_rsae_sha512:rsa_pss_rsae_sha256:ecdsa_secp256r1_sha256"}, []string{"rsa_pss_rsae_sha256", "rsa_pss_rsae_sha512"}},
		{nil, []string{"rsa_pss_rsae_sha256", "rsa_pss_rsae_sha384", "rsa_pss_rsae_sha512"}},
	} {
		addr := startSServer(t, append([]string{"-cert", cert, "-key", key, "-tls1_3"}, tc.args...)...)
		p := &prober{addr: addr, sni: "sigalgs.test", timeout: 5 * time.Second, sem: make(chan struct{}, 4), dial: (&net.Dialer{}).DialContext}
		algs, err := p.sigAlgs13(context.Background())
		if err != nil {
			t.Fatalf("s_server %v: %v", tc.args, err)
		}
		var got []string
		for _, a := range algs {
			got = append(got, SigAlgName(a))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("s_server %v: TLS 1.3 signature algorithms %v, want %v", tc.args, got, tc.want)
		}
	}
}

// A TLS 1.3 server the probe's hello cannot reach (no X25519) gives an
// error, not an empty list that would read as "signs with nothing".
func TestSigAlgs13NeedsX25519(t *testing.T) {
	leaf := testpki.NewRoot(t, "P256 Root").Server(t, "p256.test")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf.TLSCertificate()},
		MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.CurveP256}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	p := &prober{addr: ln.Addr().String(), sni: "p256.test", timeout: 5 * time.Second, sem: make(chan struct{}, 4), dial: (&net.Dialer{}).DialContext}
	algs, err := p.sigAlgs13(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not tested") {
		t.Errorf("sigAlgs13 = %v, %v; want a not-tested error", algs, err)
	}
}

// TestSigAlgs13Unchecked: a listener that answers every ClientHello with
// the same TLS 1.3 ServerHello, whatever the signature schemes offered,
// shows nothing about them: the probe must say so instead of listing
// every scheme.
func TestSigAlgs13Unchecked(t *testing.T) {
	b := cryptobyte.NewBuilder(nil)
	b.AddUint8(hsServerHello)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16(VersionTLS12)
		b.AddBytes(make([]byte, 32)) // random
		b.AddUint8(0)                // no session ID
		b.AddUint16(0x1301)
		b.AddUint8(0)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint16(extSupportedVersions)
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint16(VersionTLS13) })
			b.AddUint16(extKeyShare)
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				b.AddUint16(0x001d)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(make([]byte, 32)) })
			})
		})
	})
	hello := records(recordHandshake, VersionTLS12, b.BytesOrPanic())
	addr := silentListener(t, func(c *net.TCPConn) { c.Write(hello) })
	p := &prober{addr: addr, timeout: 2 * time.Second, sem: make(chan struct{}, 4), dial: (&net.Dialer{}).DialContext}
	algs, err := p.sigAlgs13(context.Background())
	if err == nil || !strings.Contains(err.Error(), "does not check the offer") {
		t.Errorf("sigAlgs13 = %v, %v; want an error saying the server does not check the offer", algs, err)
	}
}
