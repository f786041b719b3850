package authz

import (
	"bytes"
	"crypto/x509"
	"errors"

	"github.com/gatehouse/gatehouse/internal/identity"
)

// Compile validates rules and precompiles them into a Policy. It is called
// at startup and on reload, never on the request path, so that a malformed
// pattern, pin or issuer file stops the configuration from loading instead
// of failing at first use. The first problem is returned as a *RuleError.
//
// loadIssuer reads the CA certificates of an issuer rule; it is called once
// per issuer rule. It may be nil when no rule sets Issuer.
//
// Compile(nil, nil) returns an empty Policy, which allows every verified
// client.
func Compile(rules []Rule, loadIssuer func(path string) ([]*x509.Certificate, error)) (*Policy, error) {
	p := &Policy{rules: make([]compiledRule, 0, len(rules))}
	for i, r := range rules {
		cr, err := compileRule(i, r, loadIssuer)
		if err != nil {
			return nil, err
		}
		p.rules = append(p.rules, cr)
	}
	return p, nil
}

// fieldNames lists the rule keys in the order the help text shows them.
const fieldNames = "spiffe_id, san_uri, san_dns, san_email, san_ip, subject, issuer, fingerprint_sha256 or spki_sha256"

func compileRule(i int, r Rule, loadIssuer func(string) ([]*x509.Certificate, error)) (compiledRule, error) {
	cr := compiledRule{}
	if r.isZero() {
		return cr, &RuleError{Index: i, Problem: "rule sets no field", Hint: "set at least one of " + fieldNames + "; a route without allow rules admits every verified client"}
	}
	fail := func(field, value string, iv *invalid) error {
		return &RuleError{Index: i, Field: field, Value: value, Problem: iv.problem, Hint: iv.hint}
	}
	// Checks run in this order; the cheapest, most selective ones first.
	if v := r.FingerprintSHA256; v != "" {
		want, iv := parseFingerprint(v)
		if iv != nil {
			return cr, fail("fingerprint_sha256", v, iv)
		}
		cr.add("fingerprint_sha256", func(id *identity.Identity) string {
			if id.FingerprintSHA256 != want {
				return whyNoMatch
			}
			return ""
		})
	}
	if v := r.SPKISHA256; v != "" {
		want, iv := parseSPKIPin(v)
		if iv != nil {
			return cr, fail("spki_sha256", v, iv)
		}
		cr.add("spki_sha256", func(id *identity.Identity) string {
			if id.SPKISHA256 != want {
				return whyNoMatch
			}
			return ""
		})
	}
	if v := r.Issuer; v != "" {
		raws, err := loadIssuerRaws(v, loadIssuer)
		if err != nil {
			var iv *invalid
			if errors.As(err, &iv) {
				return cr, fail("issuer", v, iv)
			}
			return cr, &RuleError{Index: i, Field: "issuer", Value: v, Problem: "load CA certificate", Hint: "give the path of a PEM file holding the issuing CA certificate", Err: err}
		}
		cr.add("issuer", func(id *identity.Identity) string { return matchIssuer(raws, id.Chain) })
	}
	if v := r.SANIP; v != "" {
		m, iv := parseIPPattern(v)
		if iv != nil {
			return cr, fail("san_ip", v, iv)
		}
		cr.add("san_ip", func(id *identity.Identity) string { return m.match(id.Leaf.IPAddresses) })
	}
	if v := r.SANDNS; v != "" {
		m, iv := parseDNSPattern(v)
		if iv != nil {
			return cr, fail("san_dns", v, iv)
		}
		cr.add("san_dns", func(id *identity.Identity) string { return m.matchAny(id.Leaf.DNSNames) })
	}
	if v := r.SANEmail; v != "" {
		m, iv := parseEmailPattern(v)
		if iv != nil {
			return cr, fail("san_email", v, iv)
		}
		cr.add("san_email", func(id *identity.Identity) string { return m.matchAny(id.Leaf.EmailAddresses) })
	}
	if v := r.SANURI; v != "" {
		want, iv := parseURIPattern(v)
		if iv != nil {
			return cr, fail("san_uri", v, iv)
		}
		cr.add("san_uri", func(id *identity.Identity) string { return matchURI(want, id.Leaf.URIs) })
	}
	if v := r.SPIFFEID; v != "" {
		m, iv := parseSPIFFEPattern(v)
		if iv != nil {
			return cr, fail("spiffe_id", v, iv)
		}
		cr.add("spiffe_id", func(id *identity.Identity) string { return m.match(id.Leaf.URIs) })
	}
	if !r.Subject.isZero() {
		attrs, field, value, iv := compileSubject(r.Subject)
		if iv != nil {
			return cr, fail(field, value, iv)
		}
		for _, a := range attrs {
			cr.add(a.field, func(id *identity.Identity) string { return a.match(id.Leaf.RawSubject) })
		}
	}
	return cr, nil
}

// loadIssuerRaws loads an issuer file and keeps the DER of each certificate:
// matching is by byte identity, so nothing else is needed per request.
func loadIssuerRaws(path string, load func(string) ([]*x509.Certificate, error)) ([][]byte, error) {
	if load == nil {
		return nil, errors.New("no issuer loader configured")
	}
	certs, err := load(path)
	if err != nil {
		return nil, err
	}
	var raws [][]byte
	for _, c := range certs {
		if c != nil && len(c.Raw) > 0 {
			raws = append(raws, c.Raw)
		}
	}
	if len(raws) == 0 {
		return nil, bad("file holds no certificate", "give the path of a PEM file holding the issuing CA certificate")
	}
	return raws, nil
}

// matchIssuer reports whether a certificate above the leaf in the verified
// chain is byte-identical to one of the configured issuers.
func matchIssuer(raws [][]byte, chain []*x509.Certificate) string {
	if len(chain) < 2 {
		return "no certificate above the leaf"
	}
	for _, c := range chain[1:] {
		for _, raw := range raws {
			if bytes.Equal(c.Raw, raw) {
				return ""
			}
		}
	}
	return whyNoMatch
}
