package serial

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
)

// Format returns n as `openssl x509 -serial` prints it: upper-case hex of
// whole bytes, so a leading zero when the top nibble is zero
// ("053E84F8..."). Logs, audit records and the CA's output all use this
// form, so that a serial copied from one greps in the others. Zero and
// negative serials (invalid, but seen in the wild) print as "00" and with
// a leading "-".
func Format(n *big.Int) string {
	if n == nil {
		return ""
	}
	s := strings.ToUpper(hex.EncodeToString(new(big.Int).Abs(n).Bytes()))
	if s == "" {
		s = "00"
	}
	if n.Sign() < 0 {
		s = "-" + s
	}
	return s
}

// Parse reads a serial in hex: openssl's form, lower case, with ":"
// between bytes (as `openssl x509 -text` prints) or a "0x" prefix, and
// with surrounding spaces or a "serial=" prefix (as `openssl x509 -serial`
// prints). It must be positive.
func Parse(s string) (*big.Int, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimPrefix(strings.TrimPrefix(t, "serial="), "0x")
	t = strings.TrimPrefix(t, "0X")
	t = strings.ReplaceAll(t, ":", "")
	n, ok := new(big.Int).SetString(t, 16)
	if !ok || t == "" || n.Sign() <= 0 {
		return nil, fmt.Errorf("parse serial %q: not a positive hexadecimal number (give it as openssl prints it, e.g. 053E84F8A1)", s)
	}
	return n, nil
}
