package authz

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"
)

// Attribute types of the subject fields a rule can name.
var (
	oidCN = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidO  = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidC  = asn1.ObjectIdentifier{2, 5, 4, 6}
)

// subjectAttr is one compiled subject.* check.
type subjectAttr struct {
	field string // "subject.cn"
	oid   asn1.ObjectIdentifier
	want  string
}

func compileSubject(s Subject) (attrs []subjectAttr, field, value string, iv *invalid) {
	for _, a := range []subjectAttr{
		{"subject.cn", oidCN, s.CN},
		{"subject.o", oidO, s.O},
		{"subject.ou", oidOU, s.OU},
		{"subject.c", oidC, s.C},
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
		attrs = append(attrs, a)
	}
	return attrs, "", "", nil
}

func isCountryCode(s string) bool {
	return len(s) == 2 && isLetter(s[0]) && isLetter(s[1])
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// match looks at every attribute of the subject (pkix.Name.Names keeps all
// of them, while CommonName keeps only the last CN), so a subject that
// carries the attribute twice is seen as ambiguous and never matches.
func (a *subjectAttr) match(names []pkix.AttributeTypeAndValue) string {
	found := 0
	var got string
	for i := range names {
		if !names[i].Type.Equal(a.oid) {
			continue
		}
		found++
		got, _ = names[i].Value.(string) // non-string values never equal
	}
	switch {
	case found == 0:
		return "attribute absent"
	case found > 1:
		return "attribute present more than once"
	case strings.IndexByte(got, 0) >= 0:
		return whyNUL
	case got != a.want:
		return whyNoMatch
	}
	return ""
}
