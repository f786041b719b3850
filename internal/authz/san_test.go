package authz

import (
	"crypto/x509"
	"net"
	"net/url"
	"testing"
)

func TestSANDNS(t *testing.T) {
	rule := func(p string) Rule { return Rule{SANDNS: p} }
	dns := func(n ...string) certOpts { return certOpts{dns: n} }
	runMatchCases(t, []matchCase{
		{"exact", rule("api.example.com"), dns("api.example.com"), true},
		{"exact among several", rule("api.example.com"), dns("www.example.com", "api.example.com"), true},
		{"different", rule("api.example.com"), dns("www.example.com"), false},
		{"case folded", rule("API.Example.com"), dns("api.EXAMPLE.COM"), true},
		{"trailing dot in cert", rule("api.example.com"), dns("api.example.com."), true},
		{"trailing dot in rule", rule("api.example.com."), dns("api.example.com"), true},
		{"two trailing dots", rule("api.example.com"), dns("api.example.com.."), false},
		{"suffix is not a match", rule("example.com"), dns("api.example.com"), false},
		{"prefix is not a match", rule("api.example.com"), dns("api.example.com.evil.org"), false},
		{"wildcard one label", rule("*.svc.example.com"), dns("orders.svc.example.com"), true},
		{"wildcard case and dot", rule("*.svc.example.com"), dns("Orders.SVC.example.com."), true},
		{"wildcard two labels", rule("*.svc.example.com"), dns("a.orders.svc.example.com"), false},
		{"wildcard needs a label", rule("*.svc.example.com"), dns("svc.example.com"), false},
		{"wildcard empty label", rule("*.svc.example.com"), dns(".svc.example.com"), false},
		{"wildcard odd label", rule("*.svc.example.com"), dns("a b.svc.example.com"), false},
		{"cert wildcard vs wildcard rule", rule("*.example.com"), dns("*.example.com"), true},
		{"cert wildcard is not expanded", rule("*.example.com"), dns("*x.example.com"), false},
		{"cert wildcard vs exact rule", rule("api.example.com"), dns("*.example.com"), false},
		{"cert deeper wildcard", rule("*.example.com"), dns("*.a.example.com"), false},
		{"NUL truncation", rule("api.example.com"), dns("api.example.com\x00.evil.org"), false},
		{"NUL in wildcard label", rule("*.example.com"), dns("a\x00b.example.com"), false},
		{"NUL then match", rule("api.example.com"), dns("x\x00y", "api.example.com"), true},
		{"no DNS SAN", rule("api.example.com"), certOpts{emails: []string{"a@api.example.com"}}, false},
	})
}

func TestSANDNSUnicodeFolding(t *testing.T) {
	// U+212A KELVIN SIGN folds to "k" under Unicode rules; it must not here.
	p := mustCompile(t, Rule{SANDNS: "kube.example.com"})
	id := fakeLeaf(&x509.Certificate{DNSNames: []string{"\u212aube.example.com"}})
	if d := p.Evaluate(id); d.Allowed {
		t.Fatalf("Kelvin sign matched: %+v", d)
	}
}

func TestSANEmail(t *testing.T) {
	rule := func(p string) Rule { return Rule{SANEmail: p} }
	mail := func(a ...string) certOpts { return certOpts{emails: a} }
	runMatchCases(t, []matchCase{
		{"exact", rule("ops@example.com"), mail("ops@example.com"), true},
		{"domain case folded", rule("ops@Example.COM"), mail("ops@example.com"), true},
		{"domain case folded in cert", rule("ops@example.com"), mail("ops@EXAMPLE.com"), true},
		{"local part case sensitive", rule("ops@example.com"), mail("Ops@example.com"), false},
		{"other local part", rule("ops@example.com"), mail("dev@example.com"), false},
		{"other domain", rule("ops@example.com"), mail("ops@example.org"), false},
		{"subdomain", rule("ops@example.com"), mail("ops@mail.example.com"), false},
		{"NUL", rule("ops@example.com"), mail("ops@example.com\x00.evil.org"), false},
		{"NUL in local part", rule("ops@example.com"), mail("o\x00ps@example.com"), false},
		{"last at sign splits", rule("ops@example.com"), mail("x@ops@example.com"), false},
		{"second address", rule("ops@example.com"), mail("dev@example.com", "ops@example.com"), true},
		{"no email SAN", rule("ops@example.com"), certOpts{dns: []string{"example.com"}}, false},
	})
}

func TestSANIP(t *testing.T) {
	rule := func(p string) Rule { return Rule{SANIP: p} }
	ips := func(a ...string) certOpts {
		var o certOpts
		for _, s := range a {
			o.ips = append(o.ips, net.ParseIP(s))
		}
		return o
	}
	runMatchCases(t, []matchCase{
		{"v4 exact", rule("10.1.2.3"), ips("10.1.2.3"), true},
		{"v4 other", rule("10.1.2.3"), ips("10.1.2.4"), false},
		{"v4 prefix", rule("10.0.0.0/8"), ips("10.200.0.1"), true},
		{"v4 outside prefix", rule("10.0.0.0/8"), ips("11.0.0.1"), false},
		{"v6 exact", rule("2001:db8::1"), ips("2001:db8::1"), true},
		{"v6 prefix", rule("2001:db8::/32"), ips("2001:db8:1::5"), true},
		{"v6 outside", rule("2001:db8::/32"), ips("2001:db9::1"), false},
		{"v4 rule vs v6 cert", rule("10.1.2.3"), ips("2001:db8::1"), false},
		{"mapped rule vs v4 cert", rule("::ffff:10.1.2.3"), ips("10.1.2.3"), true},
		{"mapped prefix vs v4 cert", rule("::ffff:10.0.0.0/104"), ips("10.9.9.9"), true},
		{"mapped prefix outside", rule("::ffff:10.0.0.0/104"), ips("11.0.0.1"), false},
		{"v6 any holds mapped v4", rule("::/0"), ips("192.0.2.1"), true},
		{"second address", rule("10.0.0.0/8"), ips("192.0.2.1", "10.0.0.1"), true},
		{"no IP SAN", rule("10.0.0.0/8"), certOpts{dns: []string{"10.0.0.1"}}, false},
	})
}

func TestSANIPMappedInCertificate(t *testing.T) {
	// crypto/x509 encodes IPv4-mapped addresses as 4 bytes, so a 16-byte
	// mapped SAN only arrives from other encoders; build the leaf directly.
	mapped := net.ParseIP("::ffff:10.1.2.3") // 16 bytes
	if len(mapped) != net.IPv6len {
		t.Fatal("want a 16-byte address")
	}
	id := fakeLeaf(&x509.Certificate{IPAddresses: []net.IP{mapped}})
	for _, r := range []string{"10.1.2.3", "10.0.0.0/8", "::ffff:10.1.2.3", "::ffff:10.0.0.0/104"} {
		if d := mustCompile(t, Rule{SANIP: r}).Evaluate(id); !d.Allowed {
			t.Errorf("san_ip %q vs ::ffff:10.1.2.3: %+v", r, d)
		}
	}
	if d := mustCompile(t, Rule{SANIP: "10.1.2.4"}).Evaluate(id); d.Allowed {
		t.Errorf("san_ip 10.1.2.4 matched ::ffff:10.1.2.3")
	}
}

func TestSANURI(t *testing.T) {
	rule := func(p string) Rule { return Rule{SANURI: p} }
	uris := func(s ...string) certOpts {
		var o certOpts
		for _, v := range s {
			o.uris = append(o.uris, mustURL(t, v))
		}
		return o
	}
	runMatchCases(t, []matchCase{
		{"exact", rule("https://id.example.com/partner-a"), uris("https://id.example.com/partner-a"), true},
		{"second of several", rule("urn:example:partner-a"), uris("https://x.example/", "urn:example:partner-a"), true},
		{"case sensitive path", rule("https://id.example.com/partner-a"), uris("https://id.example.com/Partner-A"), false},
		{"host case is not folded", rule("https://id.example.com/a"), uris("https://ID.example.com/a"), false},
		{"prefix is not a match", rule("https://id.example.com/a"), uris("https://id.example.com/a/b"), false},
		{"spiffe as plain URI", rule("spiffe://example.com/a"), uris("spiffe://example.com/a"), true},
		{"encoded differs", rule("https://id.example.com/a"), certOpts{uris: []*url.URL{{Scheme: "https", Host: "id.example.com", Path: "/a", RawPath: "/%61"}}}, false},
		{"no URI SAN", rule("https://id.example.com/a"), certOpts{dns: []string{"id.example.com"}}, false},
	})
}
