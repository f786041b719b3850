package authz

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"

	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Field kinds FuzzEvaluate puts the fuzzed pattern and value into.
const (
	fuzzSPIFFE = iota
	fuzzURI
	fuzzDNS
	fuzzEmail
	fuzzIP
	fuzzCN
	fuzzKinds
)

// FuzzEvaluate compiles a fuzzed pattern into one rule and evaluates it
// against a leaf carrying the fuzzed value in the matching field. The leaf
// is a parsed-form x509.Certificate built directly (signing one per input
// would make the fuzzer a thousand times slower); the signed round trip is
// covered by the table tests.
func FuzzEvaluate(f *testing.F) {
	for _, s := range []struct {
		kind           uint8
		pattern, value string
	}{
		{fuzzSPIFFE, "spiffe://example.com/billing/*", "spiffe://example.com/billing/api"},
		{fuzzSPIFFE, "spiffe://example.com/billing/*", "spiffe://example.com/billing/api/v2"},
		{fuzzSPIFFE, "spiffe://example.com/a/**", "spiffe://EXAMPLE.com/a/b/c"},
		{fuzzSPIFFE, "spiffe://example.com/a", "spiffe://example.com/%61"},
		{fuzzSPIFFE, "spiffe://example.com/*", "spiffe://example.com/a/../b"},
		{fuzzSPIFFE, "spiffe://example.com", "spiffe://example.com:80"},
		{fuzzSPIFFE, "spiffe://example.com/billing/*", "spiffe://example.com/billing/api#admin"},
		{fuzzSPIFFE, "spiffe://example.com/billing/*", "spiffe://example.com/billing/api?x=1"},
		{fuzzSPIFFE, "spiffe://example.com/billing/**", "spiffe://example.com/billing/api/#"},
		{fuzzSPIFFE, "spiffe://example.com/billing/*", "spiffe://example.com/billing/api?"},
		{fuzzURI, "https://id.example.com/a", "https://id.example.com/a"},
		{fuzzURI, "urn:x:y", "URN:x:y"},
		{fuzzDNS, "*.svc.example.com", "orders.svc.example.com."},
		{fuzzDNS, "*.example.com", "*.example.com"},
		{fuzzDNS, "api.example.com", "api.example.com\x00.evil"},
		{fuzzDNS, "kube.example.com", "\u212aube.example.com"},
		{fuzzEmail, "ops@example.com", "ops@EXAMPLE.com"},
		{fuzzEmail, "ops@example.com", "ops@example.com\x00"},
		{fuzzIP, "10.0.0.0/8", "10.1.2.3"},
		{fuzzIP, "::ffff:10.0.0.0/104", "10.1.2.3"},
		{fuzzIP, "10.1.2.3", "::ffff:10.1.2.3"},
		{fuzzCN, "admin", "admin\x00x"},
		{fuzzCN, "partner-a", "partner-a"},
		{fuzzURI, "", ""},
	} {
		f.Add(s.kind, s.pattern, s.value)
	}
	f.Fuzz(func(t *testing.T, kind uint8, pattern, value string) {
		kind %= fuzzKinds
		rule, leaf := fuzzRuleAndLeaf(kind, pattern, value)
		p, err := Compile([]Rule{rule}, nil)
		if err != nil {
			var re *RuleError
			if !errors.As(err, &re) || re.Index != 0 {
				t.Fatalf("Compile error is not a *RuleError for rule 0: %v", err)
			}
			return
		}
		d := p.Evaluate(fakeLeaf(leaf))
		if d.Allowed != (d.Rule == 0) || d.Allowed != (d.Reason == "") {
			t.Fatalf("inconsistent decision %+v", d)
		}
		if d.Allowed && strings.IndexByte(value, 0) >= 0 {
			t.Fatalf("value with NUL matched: kind %d pattern %q value %q", kind, pattern, value)
		}
		switch kind {
		case fuzzSPIFFE:
			checkSPIFFEInvariants(t, pattern, value, d.Allowed)
		case fuzzDNS:
			checkDNSInvariants(t, pattern, value, d.Allowed)
		}
		// A literal pattern matches the very value it was written from.
		if pattern != "" && pattern == value && !strings.Contains(pattern, "*") && fuzzSelfMatches(kind, leaf) && !d.Allowed {
			t.Fatalf("literal pattern %q (kind %d) did not match itself: %s", pattern, kind, d.Reason)
		}
	})
}

func fuzzRuleAndLeaf(kind uint8, pattern, value string) (Rule, *x509.Certificate) {
	var r Rule
	c := &x509.Certificate{}
	switch kind {
	case fuzzSPIFFE, fuzzURI:
		if kind == fuzzSPIFFE {
			r.SPIFFEID = pattern
		} else {
			r.SANURI = pattern
		}
		if u, err := url.Parse(value); err == nil {
			c.URIs = []*url.URL{u}
		}
	case fuzzDNS:
		r.SANDNS = pattern
		c.DNSNames = []string{value}
	case fuzzEmail:
		r.SANEmail = pattern
		c.EmailAddresses = []string{value}
	case fuzzIP:
		r.SANIP = pattern
		if ip := net.ParseIP(value); ip != nil {
			c.IPAddresses = []net.IP{ip}
		}
	case fuzzCN:
		r.Subject.CN = pattern
		c.Subject.Names = []pkix.AttributeTypeAndValue{cn(value)}
		// What crypto/x509 would put on the wire (PrintableString or
		// UTF8String); nil when value cannot be encoded (invalid UTF-8).
		c.RawSubject, _ = asn1.Marshal(pkix.Name{ExtraNames: c.Subject.Names}.ToRDNSequence())
	}
	if r.isZero() { // empty pattern: make Compile see a rule anyway
		r.SANDNS = "unused.example.com"
	}
	return r, c
}

// fuzzSelfMatches reports whether the leaf holds a value the literal rule
// must match: for SPIFFE, only a valid SPIFFE ID.
func fuzzSelfMatches(kind uint8, leaf *x509.Certificate) bool {
	switch kind {
	case fuzzSPIFFE:
		if len(leaf.URIs) != 1 {
			return false
		}
		_, _, ok := spiffeID(leaf.URIs[0])
		return ok && leaf.URIs[0].String() != ""
	case fuzzURI:
		return len(leaf.URIs) == 1
	case fuzzIP:
		return false // "10.0.0.1" vs "10.0.0.01"-style spellings are not literal
	case fuzzCN:
		return leaf.RawSubject != nil
	}
	return true
}

// checkSPIFFEInvariants re-derives the decision's constraints from the raw
// strings, independently of the matcher.
func checkSPIFFEInvariants(t *testing.T, pattern, value string, allowed bool) {
	if !allowed {
		return
	}
	// net/url drops an empty fragment ("spiffe://td/x#" parses as
	// spiffe://td/x), so the matcher cannot see it; the handshake refuses
	// such a SAN from the certificate's raw bytes (tlsconf), and here it
	// counts as the same ID.
	value = strings.TrimSuffix(value, "#")
	if strings.ContainsAny(value, "%?#@\x00") {
		t.Fatalf("spiffe %q matched malformed value %q", pattern, value)
	}
	pSegs := strings.Split(strings.TrimPrefix(pattern, "spiffe://"), "/")
	lower := strings.ToLower(value)
	if !strings.HasPrefix(lower, "spiffe://") {
		t.Fatalf("spiffe %q matched non-spiffe value %q", pattern, value)
	}
	vSegs := strings.Split(value[len("spiffe://"):], "/")
	if !strings.EqualFold(pSegs[0], vSegs[0]) {
		t.Fatalf("spiffe %q matched other trust domain %q", pattern, value)
	}
	for _, s := range vSegs[1:] {
		if s == "" || s == "." || s == ".." {
			t.Fatalf("spiffe %q matched value %q with segment %q", pattern, value, s)
		}
	}
	if strings.HasSuffix(pattern, "/**") {
		if len(vSegs) < len(pSegs) {
			t.Fatalf("spiffe %q matched shallower value %q", pattern, value)
		}
		return
	}
	if len(vSegs) != len(pSegs) {
		t.Fatalf("spiffe %q matched value %q of another depth", pattern, value)
	}
	for i := 1; i < len(pSegs); i++ {
		if pSegs[i] != "*" && pSegs[i] != vSegs[i] {
			t.Fatalf("spiffe %q matched %q: segment %d differs", pattern, value, i)
		}
	}
}

func checkDNSInvariants(t *testing.T, pattern, value string, allowed bool) {
	if !allowed {
		return
	}
	p := strings.ToLower(strings.TrimSuffix(pattern, "."))
	v := strings.TrimSuffix(value, ".")
	for i := 0; i < len(v); i++ {
		if v[i] >= 0x80 {
			t.Fatalf("san_dns %q matched non-ASCII %q", pattern, value)
		}
	}
	v = strings.ToLower(v)
	if v == p {
		return
	}
	if !strings.HasPrefix(p, "*.") || strings.Contains(v, "*") {
		t.Fatalf("san_dns %q matched different %q", pattern, value)
	}
	if strings.Count(v, ".") != strings.Count(p, ".") || !strings.HasSuffix(v, p[1:]) || strings.HasPrefix(v, ".") {
		t.Fatalf("san_dns wildcard %q matched %q at another depth", pattern, value)
	}
}

// FuzzSubjectRaw puts fuzzed bytes, under a fuzzed string tag, as the CN
// of a raw subject and checks that a match means the certificate says
// exactly the rule's value: no NUL, no decoding quirk, no case folding.
func FuzzSubjectRaw(f *testing.F) {
	for _, s := range []struct {
		tag   uint8
		value []byte
		want  string
	}{
		{uint8(tagBMPString), bmp("partner-a\x00"), "partner-a"},
		{uint8(tagBMPString), bmp("partner-a"), "partner-a"},
		{uint8(tagBMPString), bmp("\x00partner-a"), "partner-a"},
		{uint8(tagBMPString), append(bmp("partner-a"), 0), "partner-a"},
		{uint8(tagUTF8String), []byte("partner-a\x00"), "partner-a"},
		{uint8(tagPrintableString), []byte("partner-a"), "partner-a"},
		{uint8(tagTeletexString), []byte("partner-a"), "partner-a"},
		{uint8(tagUniversalString), []byte("\x00\x00\x00a"), "a"},
		{uint8(tagIA5String), []byte("PARTNER-A"), "partner-a"},
		{uint8(tagUTF8String), []byte("\u212aelvin"), "Kelvin"},
		{uint8(tagBMPString), bmp("\u212aelvin"), "kelvin"},
	} {
		f.Add(s.tag, s.value, s.want)
	}
	f.Fuzz(func(t *testing.T, tag uint8, value []byte, want string) {
		a := subjectAttr{field: "subject.cn", oid: oidCN, want: want}
		if want == "" || strings.IndexByte(want, 0) >= 0 {
			return // refused by Compile
		}
		a.compile()
		raw := rawName(t, false, rawAttr{oidCN, cbasn1.Tag(tag % 31), value})
		if a.match(raw) != "" {
			return
		}
		switch cbasn1.Tag(tag % 31) {
		case tagBMPString:
			if !bytes.Equal(value, bmp(want)) {
				t.Fatalf("BMPString %x matched %q", value, want)
			}
		case tagUTF8String, tagPrintableString, tagIA5String:
			if string(value) != want {
				t.Fatalf("string %q matched %q", value, want)
			}
		default:
			t.Fatalf("tag %d matched", tag%31)
		}
		if bytes.IndexByte(value, 0) >= 0 && cbasn1.Tag(tag%31) != tagBMPString {
			t.Fatalf("value with NUL %q matched", value)
		}
	})
}
