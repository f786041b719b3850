package scan

import (
	"context"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

// TestClientRenegotiation runs the renegotiation probe against openssl
// s_server with and without -client_renegotiation: the probe must tell
// them apart (OpenSSL 3 refuses client-initiated renegotiation by
// default).
func TestClientRenegotiation(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl is not installed (see scripts/packages.txt): %v", err)
	}
	dir := t.TempDir()
	root := testpki.NewRoot(t, "Reneg Root")
	cert, key := root.Server(t, "reneg.test").Write(t, dir, "server")
	for _, tc := range []struct {
		flag string
		want string
	}{{"-client_renegotiation", "accepted"}, {"", "refused"}} {
		addr := freePort(t)
		args := []string{"s_server", "-accept", addr, "-cert", cert, "-key", key, "-tls1_2", "-quiet"}
		if tc.flag != "" {
			args = append(args, tc.flag)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, bin, args...)
		// s_server reads stdin: keep it open and silent.
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = nil, nil
		if err := cmd.Start(); err != nil {
			t.Fatalf("openssl s_server: %v", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		if err := waitListening(addr, 10*time.Second, exited); err != nil {
			t.Fatalf("openssl s_server %s: %v", tc.flag, err)
		}
		r := &Report{Protocols: []Protocol{{Version: VersionTLS12, Offered: true, Suites: []Suite{SuiteInfo(0xC02B)}}}}
		p := &prober{addr: addr, sni: "reneg.test", timeout: 5 * time.Second, sem: make(chan struct{}, 2), dial: (&net.Dialer{}).DialContext}
		got := p.clientRenegotiation(context.Background(), r, nil)
		if got != tc.want {
			t.Errorf("s_server %s: client renegotiation %q, want %q", tc.flag, got, tc.want)
		}
		stdin.Close()
		cancel()
		<-exited
	}
}
