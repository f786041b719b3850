package scan

import (
	"strings"
	"testing"
)

// goodReport is a server that earns A+: TLS 1.2 and 1.3 with ECDHE and
// AEAD only, a trusted ECDSA P-256 certificate, long HSTS.
func goodReport() *Report {
	suites := func(ids ...uint16) []Suite {
		var out []Suite
		for _, id := range ids {
			out = append(out, SuiteInfo(id))
		}
		return out
	}
	return &Report{
		ServerName: "api.example.com",
		Protocols: []Protocol{
			{Name: "SSLv2", Version: VersionSSL2}, {Name: "SSLv3", Version: VersionSSL3},
			{Name: "TLS 1.0", Version: VersionTLS10}, {Name: "TLS 1.1", Version: VersionTLS11},
			{Name: "TLS 1.2", Version: VersionTLS12, Offered: true, ServerOrder: true, Suites: suites(0xC02B, 0xC02C, 0xCCA9)},
			{Name: "TLS 1.3", Version: VersionTLS13, Offered: true, Suites: suites(0x1301, 0x1302, 0x1303)},
		},
		Groups:       []string{"X25519MLKEM768", "x25519", "secp256r1"},
		Certificates: Certificates{Chain: []CertInfo{{KeyType: "ECDSA", KeyBits: 256}}, Trusted: true, NameMatch: true, InOrder: true, DaysLeft: 90},
		Behaviour:    Behaviour{SecureRenegotiation: true, ClientRenegotiation: "refused", FallbackSCSV: "supported"},
		HTTP:         &HTTPResult{Status: 200, HSTSMaxAge: 2 * 365 * 86400},
	}
}

func protocol(r *Report, v uint16) *Protocol {
	for i := range r.Protocols {
		if r.Protocols[i].Version == v {
			return &r.Protocols[i]
		}
	}
	return nil
}

func addSuite(r *Report, v uint16, id uint16) {
	p := protocol(r, v)
	p.Offered = true
	p.Suites = append(p.Suites, SuiteInfo(id))
}

// TestGradeCaps checks every rule that caps the grade, one case each.
func TestGradeCaps(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Report)
		grade  string
		reason string // a cap or warning naming the rule
	}{
		{"good server", func(*Report) {}, "A+", ""},
		{"no --http: no A+", func(r *Report) { r.HTTP = nil }, "A", "A+ needs HSTS"},
		{"short HSTS", func(r *Report) { r.HTTP.HSTSMaxAge = 86400 }, "A", "max-age of at least 180 days"},
		{"SSLv2", func(r *Report) { protocol(r, VersionSSL2).Offered = true }, "F", "SSLv2 is offered"},
		{"export suite", func(r *Report) { addSuite(r, VersionTLS12, 0x0003) }, "F", "export cipher suites"},
		{"anonymous suite", func(r *Report) { addSuite(r, VersionTLS12, 0x00A6) }, "F", "anonymous"},
		{"NULL suite", func(r *Report) { addSuite(r, VersionTLS12, 0x0002) }, "F", "NULL"},
		{"Heartbleed", func(r *Report) { r.Vulns = []Vuln{{ID: "heartbleed", Name: "Heartbleed", Status: Vulnerable}} }, "F", "Heartbleed"},
		{"CCS injection", func(r *Report) { r.Vulns = []Vuln{{ID: "ccs_injection", Name: "CCS injection", Status: Vulnerable}} }, "F", "CCS"},
		{"ROBOT", func(r *Report) { r.Vulns = []Vuln{{ID: "robot", Name: "ROBOT", Status: Vulnerable}} }, "F", "ROBOT"},
		{"insecure renegotiation", func(r *Report) {
			r.Behaviour.SecureRenegotiation, r.Behaviour.ClientRenegotiation = false, "accepted"
		}, "F", "insecure client-initiated renegotiation"},
		{"RSA 512", func(r *Report) { r.Certificates.Chain[0] = CertInfo{KeyType: "RSA", KeyBits: 512} }, "F", "certificate key is 512"},
		{"DH 768", func(r *Report) { addSuite(r, VersionTLS12, 0x009E); r.DHBits = 768 }, "F", "DH parameters of 768"},
		{"revoked (CRL)", func(r *Report) { r.Certificates.CRL = "revoked" }, "F", "revoked"},
		{"revoked (OCSP staple)", func(r *Report) { r.Certificates.OCSPStaple = "revoked" }, "F", "revoked"},
		{"CRIME", func(r *Report) { r.Vulns = []Vuln{{ID: "crime", Status: Vulnerable}} }, "C", "compression"},
		{"SSLv3 POODLE", func(r *Report) {
			addSuite(r, VersionSSL3, 0x002F)
			r.Vulns = []Vuln{{ID: "poodle_ssl", Status: Vulnerable}}
		}, "C", "POODLE"},
		{"SSLv3 without CBC", func(r *Report) { addSuite(r, VersionSSL3, 0x0005) }, "C", "SSLv3 is offered"},
		{"RC4", func(r *Report) { addSuite(r, VersionTLS12, 0xC011) }, "C", "RC4"},
		{"no TLS 1.2", func(r *Report) {
			protocol(r, VersionTLS12).Offered, protocol(r, VersionTLS13).Offered = false, false
			addSuite(r, VersionTLS11, 0xC009)
		}, "C", "TLS 1.2 is not supported"},
		{"3DES not last", func(r *Report) {
			p := protocol(r, VersionTLS12)
			p.Suites = append([]Suite{SuiteInfo(0xC008)}, p.Suites...)
		}, "C", "SWEET32"},
		{"3DES last in server order", func(r *Report) { addSuite(r, VersionTLS12, 0xC008) }, "A+", ""},
		{"TLS 1.0", func(r *Report) { addSuite(r, VersionTLS10, 0xC009) }, "B", "TLS 1.0 or TLS 1.1"},
		{"TLS 1.1", func(r *Report) { addSuite(r, VersionTLS11, 0xC009) }, "B", "TLS 1.0 or TLS 1.1"},
		{"no forward secrecy", func(r *Report) {
			protocol(r, VersionTLS13).Offered = false
			protocol(r, VersionTLS13).Suites = nil
			protocol(r, VersionTLS12).Suites = []Suite{SuiteInfo(0x009C)}
		}, "B", "forward secrecy"},
		{"no AEAD", func(r *Report) {
			protocol(r, VersionTLS13).Offered = false
			protocol(r, VersionTLS13).Suites = nil
			protocol(r, VersionTLS12).Suites = []Suite{SuiteInfo(0xC009)}
		}, "B", "no AEAD"},
		{"incomplete chain", func(r *Report) { r.Certificates.Incomplete = true }, "B", "incomplete"},
		{"RSA 1024", func(r *Report) { r.Certificates.Chain[0] = CertInfo{KeyType: "RSA", KeyBits: 1024} }, "B", "certificate key is 1024"},
		{"DH 1024", func(r *Report) { addSuite(r, VersionTLS12, 0x009E); r.DHBits = 1024 }, "B", "DH parameters of 1024"},
		{"no secure renegotiation", func(r *Report) { r.Behaviour.SecureRenegotiation = false }, "A-", "secure renegotiation is not supported"},
		{"client renegotiation", func(r *Report) { r.Behaviour.ClientRenegotiation = "accepted" }, "A-", "client-initiated renegotiation is accepted"},
		{"no fallback SCSV", func(r *Report) { r.Behaviour.FallbackSCSV = "not supported" }, "A-", "TLS_FALLBACK_SCSV"},
		{"root sent", func(r *Report) { r.Certificates.RootSent = true }, "A-", "root certificate"},
		{"mTLS failure", func(r *Report) {
			r.MTLS = []Check{{ID: "self_signed", Name: "self-signed certificate refused", Status: Fail, Detail: "accepted"}}
		}, "A-", "mTLS: self-signed"},
		{"mTLS inconclusive", func(r *Report) {
			r.MTLS = []Check{{ID: "no_cert", Name: "no certificate refused", Status: Inconclusive, Detail: "no answer in the handshake: timeout"}}
		}, "A-", "mTLS: no certificate refused: inconclusive"},
		{"untrusted", func(r *Report) { r.Certificates.Trusted, r.Certificates.TrustError = false, "unknown authority" }, "T", "not trusted"},
		{"name mismatch", func(r *Report) { r.Certificates.NameMatch = false }, "M", "does not match"},
		{"score below A", func(r *Report) {
			// TLS 1.2 AES-128 only with a 1024-bit DH group: 30+24+32=86 A,
			// capped at B by DH; with SSLv3 the score drops further.
			protocol(r, VersionTLS13).Offered = false
			protocol(r, VersionTLS13).Suites = nil
			addSuite(r, VersionSSL3, 0x0005)
			protocol(r, VersionTLS12).Suites = []Suite{SuiteInfo(0x0004)}
			r.Certificates.Chain[0] = CertInfo{KeyType: "RSA", KeyBits: 1000}
		}, "F", "score"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := goodReport()
			tc.mutate(r)
			r.computeGrade()
			if r.Grade.Grade != tc.grade {
				t.Errorf("grade %s, want %s (caps %+v, warnings %v)", r.Grade.Grade, tc.grade, r.Grade.Caps, r.Grade.Warnings)
			}
			if tc.reason == "" {
				return
			}
			found := false
			for _, c := range r.Grade.Caps {
				found = found || strings.Contains(c.Reason, tc.reason)
			}
			for _, w := range r.Grade.Warnings {
				found = found || strings.Contains(w, tc.reason)
			}
			if !found {
				t.Errorf("no cap or warning mentions %q: caps %+v, warnings %v", tc.reason, r.Grade.Caps, r.Grade.Warnings)
			}
		})
	}
}

func TestGradeScore(t *testing.T) {
	r := goodReport()
	r.computeGrade()
	// protocol (100+100)/2, key exchange 3072-bit equivalent = 90,
	// cipher (80+100)/2 = 90: 0.3*100 + 0.3*90 + 0.4*90 = 93.
	if r.Grade.Score != 93 || r.Grade.ProtocolScore != 100 || r.Grade.KeyExchangeScore != 90 || r.Grade.CipherScore != 90 {
		t.Errorf("score %+v", r.Grade)
	}
	if r.Grade.GradeIgnoringTrust != "" {
		t.Errorf("grade ignoring trust set for a trusted chain: %q", r.Grade.GradeIgnoringTrust)
	}
	r.Certificates.Trusted = false
	r.computeGrade()
	if r.Grade.Grade != "T" || r.Grade.GradeIgnoringTrust != "A+" {
		t.Errorf("untrusted: %s (%s)", r.Grade.Grade, r.Grade.GradeIgnoringTrust)
	}
}

func TestGradeBelow(t *testing.T) {
	for _, tc := range []struct {
		g, min string
		below  bool
	}{{"A+", "A", false}, {"A", "A", false}, {"A-", "A", true}, {"B", "A-", true}, {"T", "F", true}, {"M", "B", true}, {"F", "F", false}} {
		if got := GradeBelow(tc.g, tc.min); got != tc.below {
			t.Errorf("GradeBelow(%s, %s) = %v", tc.g, tc.min, got)
		}
	}
}

func TestSuiteClassification(t *testing.T) {
	for _, tc := range []struct {
		id                              uint16
		kx                              string
		bits                            int
		aead, fs, cbc, export, b64, rc4 bool
	}{
		{0x1301, "TLS13", 128, true, true, false, false, false, false},
		{0xC030, "ECDHE", 256, true, true, false, false, false, false},
		{0x002F, "RSA", 128, false, false, true, false, false, false},
		{0x000A, "RSA", 112, false, false, true, false, true, false},
		{0x0005, "RSA", 128, false, false, false, false, false, true},
		{0x0003, "RSA", 40, false, false, false, true, false, true},
		{0x0014, "DHE", 40, false, true, true, true, true, false},
		{0xCCA8, "ECDHE", 256, true, true, false, false, false, false},
		{0x0062, "RSA", 56, false, false, true, true, true, false},
	} {
		s := SuiteInfo(tc.id)
		if s.Kx != tc.kx || s.Bits != tc.bits || s.AEAD != tc.aead || s.FS != tc.fs || s.CBC != tc.cbc ||
			s.Export != tc.export || s.Block64 != tc.b64 || s.RC4 != tc.rc4 {
			t.Errorf("%s: %+v", s.Name, s)
		}
	}
	if s := SuiteInfo(0x0018); !s.Anon || s.FS {
		t.Errorf("ADH must be anonymous without FS: %+v", s)
	}
}
