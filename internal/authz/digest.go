package authz

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
)

const (
	hintFingerprint = `use the 64 hex digits of "openssl x509 -noout -fingerprint -sha256", with or without colons`
	hintSPKI        = "use 64 hex digits (colons optional) or base64 as in " +
		`"openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64"`
)

func parseFingerprint(s string) ([sha256.Size]byte, *invalid) {
	d, ok := parseHexDigest(s)
	if !ok {
		return d, bad("not a SHA-256 fingerprint", hintFingerprint)
	}
	return d, nil
}

func parseSPKIPin(s string) ([sha256.Size]byte, *invalid) {
	if d, ok := parseHexDigest(s); ok {
		return d, nil
	}
	var d [sha256.Size]byte
	// Strict: refuse non-zero padding bits, so one pin has one spelling.
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return d, bad("not a SHA-256 SPKI pin", hintSPKI)
	}
	copy(d[:], b)
	return d, nil
}

// parseHexDigest accepts 64 hex digits, or 32 hex pairs separated by ":".
func parseHexDigest(s string) ([sha256.Size]byte, bool) {
	var d [sha256.Size]byte
	if strings.Contains(s, ":") {
		if len(s) != 3*sha256.Size-1 {
			return d, false
		}
		for i := 2; i < len(s); i += 3 {
			if s[i] != ':' {
				return d, false
			}
		}
		s = strings.ReplaceAll(s, ":", "")
	}
	if len(s) != 2*sha256.Size {
		return d, false
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return d, false
	}
	return d, true
}

func quote(s string) string { return strconv.Quote(s) }
