package scan

import (
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dhParameter is PKCS #3's DHParameter, as openssl writes DH PARAMETERS.
type dhParameter struct {
	P, G *big.Int
}

// opensslDHPrime returns the prime of openssl's built-in group name.
func opensslDHPrime(t *testing.T, group string) *big.Int {
	t.Helper()
	out := filepath.Join(t.TempDir(), group+".pem")
	if b, err := exec.Command("openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:"+group, "-out", out).CombinedOutput(); err != nil {
		t.Fatalf("openssl genpkey group:%s (is openssl installed? see scripts/packages.txt): %v\n%s", group, err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(data)
	var p dhParameter
	if blk == nil || blk.Type != "DH PARAMETERS" {
		t.Fatalf("openssl group:%s: no DH PARAMETERS block", group)
	}
	if _, err := asn1.Unmarshal(blk.Bytes, &p); err != nil {
		t.Fatalf("openssl group:%s: %v", group, err)
	}
	return p.P
}

// The primes computed from the RFC formulas are OpenSSL's built-in
// groups, where OpenSSL has them (RFC 3526 and RFC 7919).
func TestCommonPrimesMatchOpenSSL(t *testing.T) {
	for group, want := range map[string]string{
		"modp_1536": "RFC 3526 group 5", "modp_2048": "RFC 3526 group 14", "modp_3072": "RFC 3526 group 15",
		"modp_4096": "RFC 3526 group 16", "modp_6144": "RFC 3526 group 17", "modp_8192": "RFC 3526 group 18",
		"ffdhe2048": "RFC 7919 ffdhe2048", "ffdhe3072": "RFC 7919 ffdhe3072", "ffdhe4096": "RFC 7919 ffdhe4096",
		"ffdhe6144": "RFC 7919 ffdhe6144", "ffdhe8192": "RFC 7919 ffdhe8192",
	} {
		p := opensslDHPrime(t, group)
		if got := commonPrime(p.Bytes()); got != want {
			t.Errorf("openssl %s: commonPrime = %q, want %q", group, got, want)
		}
		// A leading zero byte (as a TLS server may send) changes nothing.
		if got := commonPrime(append([]byte{0}, p.Bytes()...)); got != want {
			t.Errorf("openssl %s with a leading zero: %q", group, got)
		}
		// One bit off is no common prime.
		q := new(big.Int).Xor(p, big.NewInt(1<<10))
		if got := commonPrime(q.Bytes()); got != "" {
			t.Errorf("openssl %s with a bit flipped: %q", group, got)
		}
	}
}

// OpenSSL's command line has no RFC 2409 groups: those computed here must
// be safe primes (p and (p-1)/2 prime), which a wrong constant is not.
func TestRFC2409PrimesAreSafePrimes(t *testing.T) {
	const scale = 8192 - 130
	pi, e := fixedPi(scale), fixedE(scale)
	for _, g := range publishedGroups {
		p := g.prime(pi, e, scale)
		if p.BitLen() != g.bits {
			t.Errorf("%s: %d bits, want %d", g.name, p.BitLen(), g.bits)
		}
		if g.bits > 1024 {
			continue // checked against OpenSSL above
		}
		q := new(big.Int).Rsh(p, 1)
		if !p.ProbablyPrime(20) || !q.ProbablyPrime(20) {
			t.Errorf("%s: not a safe prime: %x", g.name, p)
		}
	}
}

// TestLogjamCommonPrime scans openssl s_server with DHE only and three DH
// groups: RFC 7919 ffdhe2048 (common, strong), a group generated here
// (not common) and RFC 2409 group 2 (common and 1024 bits: Logjam).
func TestLogjamCommonPrime(t *testing.T) {
	dir := t.TempDir()
	cert, key := rsaServer(t, dir, "dh.test")
	ffdhe := filepath.Join(dir, "ffdhe2048.pem")
	if b, err := exec.Command("openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048", "-out", ffdhe).CombinedOutput(); err != nil {
		t.Fatalf("openssl genpkey ffdhe2048: %v\n%s", err, b)
	}
	// A fresh group: openssl dhparam -dsaparam is quick (no safe prime
	// search) but writes X9.42 parameters, which s_server cannot load, so
	// its p and g are rewritten as PKCS #3.
	x942, err := exec.Command("openssl", "dhparam", "-dsaparam", "2048").Output()
	if err != nil {
		t.Fatalf("openssl dhparam -dsaparam 2048: %v", err)
	}
	var fresh dhParameter
	if blk, _ := pem.Decode(x942); blk == nil {
		t.Fatalf("openssl dhparam -dsaparam: no PEM: %s", x942)
	} else if _, err := asn1.Unmarshal(blk.Bytes, &fresh); err != nil {
		t.Fatalf("openssl dhparam -dsaparam: %v", err)
	}
	custom := writeDHParams(t, dir, "custom.pem", fresh)
	// OpenSSL has no RFC 2409 group by name: the prime computed here,
	// which TestRFC2409PrimesAreSafePrimes checks.
	const scale = 8192 - 130
	oakley2 := writeDHParams(t, dir, "oakley2.pem", dhParameter{P: publishedGroups[1].prime(fixedPi(scale), fixedE(scale), scale), G: big.NewInt(2)})
	for _, tc := range []struct {
		name, file, cipher string
		bits               int
		common             string
		logjam             VulnStatus
	}{
		{"ffdhe2048", ffdhe, "DHE-RSA-AES128-GCM-SHA256", 2048, "RFC 7919 ffdhe2048", NotVulnerable},
		{"generated", custom, "DHE-RSA-AES128-GCM-SHA256", 2048, "", NotVulnerable},
		// Without -dhparam OpenSSL 3 picks its built-in RFC 3526 group.
		{"openssl default", "", "DHE-RSA-AES128-GCM-SHA256", 2048, "RFC 3526 group 14", NotVulnerable},
		{"oakley group 2", oakley2, "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0", 1024, "RFC 2409 group 2", Vulnerable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"-cert", cert, "-key", key, "-tls1_2", "-cipher", tc.cipher}
			if tc.file != "" {
				args = append(args, "-dhparam", tc.file)
			}
			addr := startSServer(t, args...)
			r := scanFor(t, Options{Addr: addr, ServerName: "dh.test", Timeout: 5 * time.Second})
			if r.DHBits != tc.bits || r.DHCommonPrime != tc.common {
				t.Errorf("DH %d bits, common prime %q; want %d, %q", r.DHBits, r.DHCommonPrime, tc.bits, tc.common)
			}
			v := vuln(r, "logjam")
			if v == nil || v.Status != tc.logjam || (tc.common != "") != strings.Contains(v.Detail, "common prime ("+tc.common+")") {
				t.Errorf("logjam = %+v, want %s naming the common prime %q", v, tc.logjam, tc.common)
			}
			if tc.logjam == Vulnerable && r.Grade.Grade != "F" && r.Grade.GradeIgnoringTrust != "F" {
				t.Errorf("grade %s (%s), want F", r.Grade.Grade, r.Grade.GradeIgnoringTrust)
			}
		})
	}
}

// writeDHParams writes p and g as PKCS #3 DH PARAMETERS.
func writeDHParams(t *testing.T, dir, name string, p dhParameter) string {
	t.Helper()
	der, err := asn1.Marshal(dhParameter{P: p.P, G: p.G})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "DH PARAMETERS", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
