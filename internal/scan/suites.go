package scan

import (
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse/internal/suitenames"
)

// Suite is a cipher suite and what its name says about it.
type Suite struct {
	ID      uint16 `json:"id"`
	Name    string `json:"name"`    // IANA name
	OpenSSL string `json:"openssl"` // OpenSSL name, as testssl.sh and sslscan print it
	// Kx is the key exchange ("ECDHE", "DHE", "RSA", "ECDH", "DH", "PSK",
	// "TLS13"); Auth the authentication ("RSA", "ECDSA", "DSS", "anon", "").
	Kx      string `json:"kx"`
	Auth    string `json:"auth"`
	Cipher  string `json:"cipher"` // e.g. "AES_128_GCM", "3DES_EDE_CBC", "RC4_128"
	Bits    int    `json:"bits"`   // symmetric key strength (3DES counts 112)
	AEAD    bool   `json:"aead"`
	FS      bool   `json:"forward_secrecy"`
	CBC     bool   `json:"cbc"`
	Export  bool   `json:"export"`
	Anon    bool   `json:"anonymous"`
	Null    bool   `json:"null"`
	RC4     bool   `json:"rc4"`
	Block64 bool   `json:"block_64bit"` // 3DES, DES, IDEA, RC2: SWEET32
}

// suiteTable lists the suites the prober offers (suitenames: every suite
// OpenSSL or Go implements, plus the export and anonymous ones old servers
// still enable). Properties are derived from the IANA name in init.
var suiteTable = func() []Suite {
	var t []Suite
	for _, n := range suitenames.All() {
		t = append(t, Suite{ID: n.ID, Name: n.IANA, OpenSSL: n.OpenSSL})
	}
	return t
}()

var suiteByID = map[uint16]*Suite{}

func init() {
	for i := range suiteTable {
		s := &suiteTable[i]
		classify(s)
		if _, dup := suiteByID[s.ID]; dup {
			panic(fmt.Sprintf("scan: duplicate suite %#04x", s.ID))
		}
		suiteByID[s.ID] = s
	}
}

// classify fills a suite's properties from its IANA name.
func classify(s *Suite) {
	n := strings.TrimPrefix(s.Name, "TLS_")
	kx, enc, ok := strings.Cut(n, "_WITH_")
	if !ok { // TLS 1.3: TLS_<AEAD>_<HASH>
		s.Kx, enc = "TLS13", n
		s.FS = true
	} else {
		s.Export = strings.Contains(kx, "EXPORT")
		kx = strings.Replace(strings.Replace(kx, "_EXPORT1024", "", 1), "_EXPORT", "", 1)
		s.Anon = strings.HasSuffix(kx, "_anon")
		k, a, _ := strings.Cut(kx, "_")
		s.Kx, s.Auth = k, a
		if k == "RSA" || k == "PSK" {
			s.Auth = k
		}
		s.FS = (k == "ECDHE" || k == "DHE") && !s.Anon
	}
	// Drop the MAC / PRF hash.
	for _, h := range []string{"_SHA384", "_SHA256", "_SHA", "_MD5"} {
		if strings.HasSuffix(enc, h) {
			enc = strings.TrimSuffix(enc, h)
			break
		}
	}
	s.Cipher = enc
	s.AEAD = strings.Contains(enc, "GCM") || strings.Contains(enc, "CCM") || strings.Contains(enc, "POLY1305")
	s.CBC = strings.HasSuffix(enc, "_CBC") || strings.Contains(enc, "_CBC_")
	s.RC4 = strings.HasPrefix(enc, "RC4")
	s.Null = enc == "NULL"
	switch {
	case s.Null:
		s.Bits = 0
	case strings.Contains(enc, "_40") || strings.Contains(enc, "DES40"):
		s.Bits = 40
	case strings.HasPrefix(enc, "RC4_56") || enc == "DES_CBC":
		s.Bits = 56
	case strings.HasPrefix(enc, "3DES"):
		s.Bits = 112
	case strings.Contains(enc, "256") || strings.HasPrefix(enc, "CHACHA20"):
		s.Bits = 256
	default: // AES_128, CAMELLIA_128, ARIA_128, SEED, IDEA, RC4_128
		s.Bits = 128
	}
	s.Block64 = strings.HasPrefix(enc, "3DES") || strings.HasPrefix(enc, "DES") || strings.HasPrefix(enc, "IDEA") || strings.HasPrefix(enc, "RC2")
}

// suitesFor returns the IDs the prober offers for version v.
func suitesFor(v uint16) []uint16 {
	var ids []uint16
	for _, s := range suiteTable {
		if (v == VersionTLS13) == (s.Kx == "TLS13") {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// SuiteInfo returns what is known about suite id (a bare entry for an
// unknown one).
func SuiteInfo(id uint16) Suite {
	if s, ok := suiteByID[id]; ok {
		return *s
	}
	return Suite{ID: id, Name: fmt.Sprintf("unknown_%#04x", id), OpenSSL: fmt.Sprintf("0x%04X", id)}
}
