package cli

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A CA made with --intermediate publishes the root's CRL too, so verifiers
// that check the whole chain accept its clients: openssl verify
// -crl_check_all, and Debian's nginx with ssl_verify_depth 2 and ssl_crl
// given gatehouse's CRLs (a valid client in, a revoked one out). With the
// issuing CA's CRL alone both refuse every client ("unable to get
// certificate CRL"). The gateway given both CRLs does not warn of a CA
// without CRL.
func TestRootCRLWithOpenSSLAndNginx(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Fatal("nginx is needed (Debian package nginx, in scripts/packages.txt): " + err.Error())
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed (scripts/packages.txt)")
	}
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	env := map[string]string{passphraseEnv: caTestPass}
	caMust(t, env, "ca", "init", "--dir", pki, "--name", "Chain Root", "--intermediate", "--url", "http://127.0.0.1:8089")
	inter := caMustOpenSSL(t, "x509", "-in", filepath.Join(pki, "intermediate.pem"), "-noout", "-ext", "crlDistributionPoints")
	if !strings.Contains(inter, "URI:http://127.0.0.1:8089/crl/root") {
		t.Errorf("the intermediate does not name the root CRL:\n%s", inter)
	}
	caMust(t, env, "ca", "issue", "--dir", pki, "--profile", "server", "--cn", "localhost", "--dns", "localhost", "--out", filepath.Join(dir, "server"))
	caMust(t, env, "ca", "issue", "--dir", pki, "--profile", "client", "--cn", "partner", "--out", filepath.Join(dir, "client"))
	issuingCRL := filepath.Join(dir, "issuing.crl")
	rootCRL := filepath.Join(dir, "root.crl")
	bundle := filepath.Join(dir, "crls.pem")
	writeCRLs := func(both bool) {
		t.Helper()
		caMust(t, env, "ca", "crl", "--dir", pki, "--out", issuingCRL)
		data, _ := os.ReadFile(issuingCRL)
		if both {
			caMust(t, env, "ca", "crl", "--dir", pki, "--root", "--out", rootCRL)
			r, _ := os.ReadFile(rootCRL)
			data = append(data, r...)
		}
		caWrite(t, bundle, string(data))
	}
	verify := func() (string, error) {
		return caOpenSSL(t, "verify", "-crl_check_all", "-CRLfile", bundle, "-CAfile", filepath.Join(pki, "ca.pem"),
			"-untrusted", filepath.Join(pki, "intermediate.pem"), filepath.Join(dir, "client.pem"))
	}

	writeCRLs(false)
	if out, err := verify(); err == nil || !strings.Contains(out, "unable to get certificate CRL") {
		t.Fatalf("without the root CRL openssl should refuse the chain: %v\n%s", err, out)
	}
	writeCRLs(true)
	if out, err := verify(); err != nil {
		t.Fatalf("openssl verify -crl_check_all with both CRLs: %v\n%s", err, out)
	}
	rootText := caMustOpenSSL(t, "crl", "-in", rootCRL, "-noout", "-issuer", "-nextupdate")
	if !strings.Contains(rootText, "CN = Chain Root") || strings.Contains(rootText, "Intermediate") {
		t.Errorf("root CRL not issued by the root:\n%s", rootText)
	}

	// nginx, as the tutorials configure it for client certificates.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := caWrite(t, filepath.Join(dir, "nginx.conf"), fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp;
  proxy_temp_path %[1]s/tmp;
  fastcgi_temp_path %[1]s/tmp;
  uwsgi_temp_path %[1]s/tmp;
  scgi_temp_path %[1]s/tmp;
  server {
    listen 127.0.0.1:%[2]d ssl;
    ssl_certificate %[1]s/server.pem;
    ssl_certificate_key %[1]s/server-key.pem;
    ssl_client_certificate %[1]s/pki/ca.pem;
    ssl_verify_client on;
    ssl_verify_depth 2;
    ssl_crl %[3]s;
    location / { return 200 "in: $ssl_client_s_dn\n"; }
  }
}
`, dir, port, bundle))
	os.Mkdir(filepath.Join(dir, "tmp"), 0o755)
	writeCRLs(false)
	cmd := exec.Command(nginx, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	curl := func() string {
		out, _ := exec.Command("curl", "-sS", "--max-time", "5", "--resolve", fmt.Sprintf("localhost:%d:127.0.0.1", port),
			"--cacert", filepath.Join(pki, "ca.pem"), "--cert", filepath.Join(dir, "client.pem"), "--key", filepath.Join(dir, "client-key.pem"),
			fmt.Sprintf("https://localhost:%d/", port)).CombinedOutput()
		return string(out)
	}
	// expect polls (bounded) until nginx, after a start or reload, answers
	// as wanted.
	expect := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			out := curl()
			if strings.Contains(out, want) {
				return
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				t.Fatalf("%s: nginx answered %q, want %q\nerror.log:\n%s", what, out, want, log)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	reload := func() {
		t.Helper()
		cmd.Process.Signal(syscall.SIGHUP)
	}
	expect("issuing CA's CRL alone", "400 The SSL certificate error")
	writeCRLs(true)
	reload()
	expect("both CRLs", "in: CN=partner")

	list := jsonList(t, "ca", "list", "--dir", pki, "--json")
	var serial string
	for _, e := range list {
		if strings.Contains(e.Subject, "partner") {
			serial = e.Serial
		}
	}
	caMust(t, env, "ca", "revoke", "--dir", pki, "--serial", serial, "--reason", "keyCompromise")
	writeCRLs(true)
	reload()
	expect("revoked client", "400 The SSL certificate error")
	if out, err := verify(); err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("openssl accepted the revoked client: %v\n%s", err, out)
	}

	// The gateway given both CRLs checks the whole chain and does not
	// warn of a CA without a CRL.
	cfg := caWrite(t, filepath.Join(dir, "gatehouse.yaml"), `listen: "127.0.0.1:0"
server_tls:
  certificates: [{cert: server.pem, key: server-key.pem}]
client_auth:
  trusted_cas: [pki/ca.pem]
  revocation: { crl: [pki/ca.crl, pki/root.crl] }
routes:
  - { name: api, backend: "http://127.0.0.1:9" }
log: { audit: off }
`)
	_, logs := startServe(t, cfg)
	if strings.Contains(logs.String(), "none configured") || strings.Contains(logs.String(), "not checked") {
		t.Errorf("gateway warned with both CRLs configured:\n%s", logs.String())
	}
}
