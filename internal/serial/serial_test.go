package serial

import (
	"math/big"
	"os/exec"
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	for in, want := range map[string]string{"53e84f8": "053E84F8", "ff": "FF", "100": "0100", "1": "01", "0": "00"} {
		n, _ := new(big.Int).SetString(in, 16)
		if got := Format(n); got != want {
			t.Errorf("Format(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	want, _ := new(big.Int).SetString("53e84f8", 16)
	for _, in := range []string{"053E84F8", "53e84f8", "05:3e:84:f8", "05:3E:84:F8", "0x053e84f8", " serial=053E84F8\n"} {
		n, err := Parse(in)
		if err != nil || n.Cmp(want) != 0 {
			t.Errorf("Parse(%q) = %v, %v", in, n, err)
		}
	}
	for _, in := range []string{"", "0", "xyz", "-05", "05:zz"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}

// Format agrees with openssl on a certificate whose serial has a leading
// zero nibble.
func TestFormatMatchesOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is needed (scripts/packages.txt installs it)")
	}
	dir := t.TempDir()
	out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", dir+"/k.pem", "-out", dir+"/c.pem", "-subj", "/CN=x", "-set_serial", "0x053E84F8A1").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	out, err = exec.Command("openssl", "x509", "-in", dir+"/c.pem", "-noout", "-serial").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	n, _ := new(big.Int).SetString("53E84F8A1", 16)
	if got := strings.TrimSpace(string(out)); got != "serial="+Format(n) {
		t.Errorf("openssl prints %q, Format gives %q", got, Format(n))
	}
}
