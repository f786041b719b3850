package authz

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"
	"unicode/utf16"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

func TestSubject(t *testing.T) {
	names := func(n ...pkix.AttributeTypeAndValue) certOpts { return certOpts{names: n} }
	rule := func(s Subject) Rule { return Rule{Subject: s} }
	runMatchCases(t, []matchCase{
		{"cn", rule(Subject{CN: "partner-a"}), names(cn("partner-a")), true},
		{"cn other", rule(Subject{CN: "partner-a"}), names(cn("partner-b")), false},
		{"cn case sensitive", rule(Subject{CN: "partner-a"}), names(cn("Partner-A")), false},
		{"cn absent", rule(Subject{CN: "partner-a"}), names(org("partner-a")), false},
		{"cn twice same", rule(Subject{CN: "partner-a"}), names(cn("partner-a"), cn("partner-a")), false},
		{"cn twice, last matches", rule(Subject{CN: "admin"}), names(cn("guest"), cn("admin")), false},
		{"cn twice, first matches", rule(Subject{CN: "admin"}), names(cn("admin"), cn("guest")), false},
		{"cn NUL truncation", rule(Subject{CN: "admin"}), names(cn("admin\x00.evil")), false},
		{"cn with DN syntax", rule(Subject{CN: "a"}), names(cn("a,O=Partner Inc")), false},
		{"cn and o", rule(Subject{CN: "partner-a", O: "Partner Inc"}), names(country("US"), org("Partner Inc"), cn("partner-a")), true},
		{"cn and wrong o", rule(Subject{CN: "partner-a", O: "Partner Inc"}), names(org("Other Inc"), cn("partner-a")), false},
		{"o twice", rule(Subject{O: "Partner Inc"}), names(org("Partner Inc"), org("Other Inc")), false},
		{"ou", rule(Subject{OU: "billing"}), names(ou("billing"), cn("x")), true},
		{"ou trailing space", rule(Subject{OU: "billing"}), names(ou("billing "), cn("x")), false},
		{"c", rule(Subject{C: "US"}), names(country("US"), cn("x")), true},
		{"c case sensitive", rule(Subject{C: "US"}), names(country("us"), cn("x")), false},
		{"all four", rule(Subject{CN: "x", O: "o", OU: "u", C: "DE"}), names(country("DE"), org("o"), ou("u"), cn("x")), true},
		{"all four, one missing", rule(Subject{CN: "x", O: "o", OU: "u", C: "DE"}), names(country("DE"), org("o"), cn("x")), false},
	})
}

// rawAttr is one attribute of a hand-encoded subject: any tag, any bytes.
type rawAttr struct {
	oid   asn1.ObjectIdentifier
	tag   cbasn1.Tag
	value []byte
}

// rawName encodes an RDNSequence, one RDN per attribute, or all of them
// in one multi-valued RDN when multi is set.
func rawName(t testing.TB, multi bool, attrs ...rawAttr) []byte {
	var b cryptobyte.Builder
	atv := func(b *cryptobyte.Builder, a rawAttr) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(a.oid)
			b.AddASN1(a.tag, func(b *cryptobyte.Builder) { b.AddBytes(a.value) })
		})
	}
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if multi {
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
				for _, a := range attrs {
					atv(b, a)
				}
			})
			return
		}
		for _, a := range attrs {
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { atv(b, a) })
		}
	})
	der, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func bmp(s string) []byte {
	var out []byte
	for _, u := range utf16.Encode([]rune(s)) {
		out = append(out, byte(u>>8), byte(u))
	}
	return out
}

// issueRaw signs a leaf whose subject is exactly raw, parses it back, and
// returns its identity: the bytes the gateway would see on the wire.
func issueRaw(t testing.TB, ca *testpki.CA, raw []byte) (*identity.Identity, bool) {
	t.Helper()
	key := testpki.NewKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		RawSubject:   raw,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, false // crypto/x509 refuses it: it never reaches authz
	}
	return identity.New([]*x509.Certificate{c, ca.Cert}), true
}

// Issue 9 item 9, and its class: every encoding trick that makes
// crypto/x509's decoded CommonName read "partner-a" while the certificate
// says something else. Certificates are signed with the raw subject and
// parsed back; authz compares the raw ASN.1.
func TestSubjectRawEncodings(t *testing.T) {
	ca := testpki.NewRoot(t, "ca")
	p, err := Compile([]Rule{{Subject: Subject{CN: "partner-a", O: "Partner Inc"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := rawAttr{oidO, tagUTF8String, []byte("Partner Inc")}
	cnAs := func(tag cbasn1.Tag, v []byte) rawAttr { return rawAttr{oidCN, tag, v} }
	cases := []struct {
		name  string
		raw   []byte
		allow bool
	}{
		{"UTF8String", rawName(t, false, o, cnAs(tagUTF8String, []byte("partner-a"))), true},
		{"PrintableString", rawName(t, false, o, cnAs(tagPrintableString, []byte("partner-a"))), true},
		{"BMPString", rawName(t, false, o, cnAs(tagBMPString, bmp("partner-a"))), true},
		{"BMPString trailing NUL", rawName(t, false, o, cnAs(tagBMPString, bmp("partner-a\x00"))), false},
		{"BMPString two trailing NULs", rawName(t, false, o, cnAs(tagBMPString, bmp("partner-a\x00\x00"))), false},
		{"BMPString leading NUL", rawName(t, false, o, cnAs(tagBMPString, bmp("\x00partner-a"))), false},
		{"BMPString inner NUL", rawName(t, false, o, cnAs(tagBMPString, bmp("partner\x00-a"))), false},
		{"BMPString NUL suffix", rawName(t, false, o, cnAs(tagBMPString, bmp("partner-a\x00.evil"))), false},
		{"UTF8String trailing NUL", rawName(t, false, o, cnAs(tagUTF8String, []byte("partner-a\x00"))), false},
		{"UTF8String inner NUL", rawName(t, false, o, cnAs(tagUTF8String, []byte("partner\x00-a"))), false},
		{"PrintableString trailing NUL", rawName(t, false, o, cnAs(tagPrintableString, []byte("partner-a\x00"))), false},
		{"TeletexString", rawName(t, false, o, cnAs(tagTeletexString, []byte("partner-a"))), false},
		{"TeletexString trailing NUL", rawName(t, false, o, cnAs(tagTeletexString, []byte("partner-a\x00"))), false},
		{"UniversalString", rawName(t, false, o, cnAs(tagUniversalString, []byte("\x00\x00\x00p\x00\x00\x00a"))), false},
		{"IA5String", rawName(t, false, o, cnAs(tagIA5String, []byte("partner-a"))), true},
		{"OCTET STRING", rawName(t, false, o, cnAs(cbasn1.OCTET_STRING, []byte("partner-a"))), false},
		{"upper case", rawName(t, false, o, cnAs(tagUTF8String, []byte("Partner-A"))), false},
		{"BMP upper case", rawName(t, false, o, cnAs(tagBMPString, bmp("PARTNER-A"))), false},
		{"fullwidth hyphen", rawName(t, false, o, cnAs(tagUTF8String, []byte("partner\uff0da"))), false},
		{"Cyrillic a", rawName(t, false, o, cnAs(tagUTF8String, []byte("p\u0430rtner-a"))), false},
		{"trailing space", rawName(t, false, o, cnAs(tagUTF8String, []byte("partner-a "))), false},
		{"two CNs in one RDN", rawName(t, true, o, cnAs(tagUTF8String, []byte("partner-a")), cnAs(tagUTF8String, []byte("x"))), false},
		{"CN twice, BMP then UTF8", rawName(t, false, o, cnAs(tagBMPString, bmp("partner-a\x00")), cnAs(tagUTF8String, []byte("partner-a"))), false},
		{"O as BMP with NUL", rawName(t, false, rawAttr{oidO, tagBMPString, bmp("Partner Inc\x00")}, cnAs(tagUTF8String, []byte("partner-a"))), false},
		{"multi-valued RDN", rawName(t, true, o, cnAs(tagUTF8String, []byte("partner-a"))), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, ok := issueRaw(t, ca, tc.raw)
			if !ok {
				if tc.allow {
					t.Fatal("crypto/x509 refused a certificate that must match")
				}
				return
			}
			d := p.Evaluate(id)
			if d.Allowed != tc.allow {
				t.Fatalf("allowed = %v, want %v (x509 CommonName %q; reason %q)", d.Allowed, tc.allow, id.Leaf.Subject.CommonName, d.Reason)
			}
		})
	}
}

func TestSubjectNonStringValue(t *testing.T) {
	a := subjectAttr{field: "subject.cn", oid: oidCN, want: "42"}
	a.compile()
	raw := rawName(t, false, rawAttr{oidCN, cbasn1.INTEGER, []byte{42}})
	if why := a.match(raw); why == "" {
		t.Fatal("non-string CN value matched")
	}
	if why := a.match([]byte{0x30, 0x05, 0x31}); why == "" {
		t.Fatal("malformed subject matched")
	}
}
