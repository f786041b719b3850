package authz

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
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

func TestSubjectNonStringValue(t *testing.T) {
	a := subjectAttr{field: "subject.cn", oid: oidCN, want: "42"}
	names := []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: 42}}
	if why := a.match(names); why == "" {
		t.Fatal("non-string CN value matched")
	}
}
