package authz

import (
	"bytes"
	"encoding/asn1"
	"strings"
	"unicode/utf16"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Attribute types of the subject fields a rule can name.
var (
	oidCN = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidO  = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidC  = asn1.ObjectIdentifier{2, 5, 4, 6}
)

// ASN.1 universal tags of the directory string types (X.520).
const (
	tagUTF8String      = cbasn1.Tag(12)
	tagPrintableString = cbasn1.Tag(19)
	tagTeletexString   = cbasn1.Tag(20)
	tagIA5String       = cbasn1.Tag(22)
	tagUniversalString = cbasn1.Tag(28)
	tagBMPString       = cbasn1.Tag(30)
)

// subjectAttr is one compiled subject.* check. Values are compared on the
// raw ASN.1 of the certificate's subject, never on crypto/x509's decoded
// strings: the decoder strips a trailing U+0000 from a BMPString and
// accepts more than a name comparison should (issue 9 item 9). want is
// pre-encoded in each string type it can be written in, so a match is a
// byte comparison and costs no allocation.
type subjectAttr struct {
	field  string // "subject.cn"
	oid    asn1.ObjectIdentifier
	want   string
	rawOID []byte // the DER content of oid
	// wantBMP is want in UCS-2 big-endian; nil when want holds a rune
	// outside the Basic Multilingual Plane (no BMPString can carry it).
	wantBMP []byte
	// printable says want uses only PrintableString's characters.
	printable bool
}

func compileSubject(s Subject) (attrs []subjectAttr, field, value string, iv *invalid) {
	for _, a := range []subjectAttr{
		{field: "subject.cn", oid: oidCN, want: s.CN},
		{field: "subject.o", oid: oidO, want: s.O},
		{field: "subject.ou", oid: oidOU, want: s.OU},
		{field: "subject.c", oid: oidC, want: s.C},
	} {
		if a.want == "" {
			continue
		}
		if strings.IndexByte(a.want, 0) >= 0 {
			return nil, a.field, a.want, bad("contains a NUL byte", "remove it; a certificate value with NUL never matches")
		}
		if a.field == "subject.c" && !isCountryCode(a.want) {
			return nil, a.field, a.want, bad("not a two-letter country code", `use an ISO 3166 code such as "US", as written in the certificate`)
		}
		a.compile()
		attrs = append(attrs, a)
	}
	return attrs, "", "", nil
}

func (a *subjectAttr) compile() {
	der, _ := asn1.Marshal(a.oid)
	a.rawOID = der[2:] // tag and one length byte: attribute OIDs are short
	a.printable = true
	for _, r := range a.want {
		if !isPrintable(r) {
			a.printable = false
		}
	}
	units := utf16.Encode([]rune(a.want))
	bmp := make([]byte, 0, 2*len(units))
	for _, u := range units {
		if utf16.IsSurrogate(rune(u)) {
			bmp = nil
			break
		}
		bmp = append(bmp, byte(u>>8), byte(u))
	}
	a.wantBMP = bmp
}

// isPrintable reports whether r is in PrintableString's alphabet (X.680).
func isPrintable(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' ||
		strings.ContainsRune(" '()+,-./:=?", r)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func isCountryCode(s string) bool {
	return len(s) == 2 && isLetter(s[0]) && isLetter(s[1])
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// match walks the raw subject (RDNSequence) and looks at every attribute
// of the type, in every RDN, so that a subject carrying it twice is seen as
// ambiguous and never matches. A value matches only when its encoding is
// one a name can be compared in (UTF8String, PrintableString, IA5String,
// BMPString) and its bytes are exactly want's in that encoding: no
// decoding, no trimming, no case folding; a NUL anywhere never matches.
func (a *subjectAttr) match(rawSubject []byte) string {
	name := cryptobyte.String(rawSubject)
	var rdns cryptobyte.String
	if !name.ReadASN1(&rdns, cbasn1.SEQUENCE) || !name.Empty() {
		return "subject is not a valid name"
	}
	found := 0
	why := ""
	for !rdns.Empty() {
		var set cryptobyte.String
		if !rdns.ReadASN1(&set, cbasn1.SET) {
			return "subject is not a valid name"
		}
		for !set.Empty() {
			var atv, oid, val cryptobyte.String
			var tag cbasn1.Tag
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) || !atv.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) ||
				!atv.ReadAnyASN1(&val, &tag) || !atv.Empty() {
				return "subject is not a valid name"
			}
			if !bytes.Equal(oid, a.rawOID) {
				continue
			}
			found++
			why = a.value(tag, val)
		}
	}
	switch {
	case found == 0:
		return "attribute absent"
	case found > 1:
		return "attribute present more than once"
	}
	return why
}

// value compares one attribute value, as encoded, with want.
func (a *subjectAttr) value(tag cbasn1.Tag, v []byte) string {
	switch tag {
	case tagUTF8String, tagPrintableString, tagIA5String:
		if bytes.IndexByte(v, 0) >= 0 {
			return whyNUL
		}
		if tag == tagPrintableString && !a.printable || tag == tagIA5String && !isASCII(a.want) {
			return whyNoMatch
		}
		if string(v) != a.want {
			return whyNoMatch
		}
		return ""
	case tagBMPString:
		for i := 0; i+1 < len(v); i += 2 {
			if v[i] == 0 && v[i+1] == 0 {
				return whyNUL
			}
		}
		if a.wantBMP == nil || !bytes.Equal(v, a.wantBMP) {
			return whyNoMatch
		}
		return ""
	case tagTeletexString, tagUniversalString:
		return "attribute encoded as a string type names are not compared in (TeletexString or UniversalString)"
	}
	return "attribute value is not a string"
}
