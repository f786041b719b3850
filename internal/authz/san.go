package authz

import (
	"net"
	"net/netip"
	"net/url"
	"strings"
)

const (
	hintDNS   = `use a host name such as "api.example.com" or "*.example.com"`
	hintEmail = `use an address such as "ops@example.com"`
	hintIP    = `use an address such as "10.1.2.3" or a prefix such as "10.0.0.0/8"`
)

// Length limits of RFC 1035.
const (
	maxDNSName  = 253
	maxDNSLabel = 63
)

// dnsPattern is a compiled san_dns rule.
type dnsPattern struct {
	// name is the lower-case name without a trailing dot; for a wildcard,
	// the part after "*" (".example.com").
	name     string
	wildcard bool
}

func parseDNSPattern(s string) (*dnsPattern, *invalid) {
	name := strings.ToLower(strings.TrimSuffix(s, "."))
	if iv := checkHostName(name, true); iv != nil {
		return nil, iv
	}
	if rest, ok := strings.CutPrefix(name, "*"); ok {
		return &dnsPattern{name: rest, wildcard: true}, nil
	}
	return &dnsPattern{name: name}, nil
}

// checkHostName validates a lower-case host name; with wildcardOK the whole
// left-most label may be "*".
func checkHostName(name string, wildcardOK bool) *invalid {
	if name == "" {
		return bad("empty host name", hintDNS)
	}
	if len(name) > maxDNSName {
		return badf(hintDNS, "host name longer than %d bytes", maxDNSName)
	}
	labels := strings.Split(name, ".")
	for i, l := range labels {
		switch {
		case l == "":
			return bad("empty label", `remove the doubled or leading "."`)
		case l == "*" && i == 0 && wildcardOK:
			if len(labels) == 1 {
				return bad(`"*" alone matches no domain`, `use "*.example.com"`)
			}
		case strings.Contains(l, "*"):
			if !wildcardOK {
				return bad(`"*" is not allowed here`, hintDNS)
			}
			return bad(`"*" is only allowed as the whole left-most label`, `use "*.example.com"`)
		case len(l) > maxDNSLabel:
			return badf(hintDNS, "label longer than %d bytes", maxDNSLabel)
		default:
			if c, ok := firstInvalid(l, isLabelByte); !ok {
				return badf("a label holds only letters, digits, '-' and '_'", "invalid character %q", c)
			}
		}
	}
	return nil
}

// isLabelByte accepts LDH plus '_', which internal names (SRV-style, some
// Kubernetes tooling) use; bytes are compared after ASCII lower-casing.
func isLabelByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

func (p *dnsPattern) matchAny(names []string) string {
	if len(names) == 0 {
		return "no DNS SAN"
	}
	why := whyNoMatch
	for _, n := range names {
		switch {
		case strings.IndexByte(n, 0) >= 0:
			why = whyNUL
		case p.match(n):
			return ""
		}
	}
	return why
}

// match matches one certificate DNS name (without NUL).
func (p *dnsPattern) match(name string) bool {
	name = strings.TrimSuffix(name, ".")
	if !p.wildcard {
		return asciiEqualFold(name, p.name)
	}
	if strings.IndexByte(name, '*') >= 0 {
		// A wildcard certificate name is matched only by the identical
		// pattern, never expanded by ours.
		return len(name) > 0 && name[0] == '*' && asciiEqualFold(name[1:], p.name)
	}
	i := strings.IndexByte(name, '.')
	if i <= 0 {
		return false
	}
	if _, ok := firstInvalid(name[:i], isLabelByte); !ok {
		return false
	}
	return asciiEqualFold(name[i:], p.name)
}

// emailPattern is a compiled san_email rule.
type emailPattern struct {
	local  string // byte-exact
	domain string // lower-case
}

func parseEmailPattern(s string) (*emailPattern, *invalid) {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return nil, bad("not an email address", hintEmail)
	}
	local, domain := s[:at], strings.ToLower(s[at+1:])
	for i := 0; i < len(local); i++ {
		if c := local[i]; c <= ' ' || c >= 0x7f {
			return nil, badf(hintEmail, "invalid character %q in local part", c)
		}
	}
	if iv := checkHostName(domain, false); iv != nil {
		return nil, &invalid{problem: "domain: " + iv.problem, hint: iv.hint}
	}
	return &emailPattern{local: local, domain: domain}, nil
}

func (p *emailPattern) matchAny(addrs []string) string {
	if len(addrs) == 0 {
		return "no email SAN"
	}
	why := whyNoMatch
	for _, a := range addrs {
		if strings.IndexByte(a, 0) >= 0 {
			why = whyNUL
			continue
		}
		at := strings.LastIndexByte(a, '@')
		if at >= 0 && a[:at] == p.local && asciiEqualFold(a[at+1:], p.domain) {
			return ""
		}
	}
	return why
}

// ipPattern is a compiled san_ip rule: a prefix, with IPv4-mapped IPv6
// prefixes of /96 and longer rewritten to the IPv4 prefix they denote.
type ipPattern struct {
	prefix netip.Prefix
}

func parseIPPattern(s string) (*ipPattern, *invalid) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return nil, bad("not an IP prefix", hintIP)
		}
		if m := p.Masked(); m != p {
			return nil, bad("prefix has host bits set", "use "+quote(m.String()))
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, bad("not an IP address", hintIP)
		}
		if a.Zone() != "" {
			return nil, bad("an IP SAN has no zone", "remove the \"%"+a.Zone()+"\"")
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return &ipPattern{prefix: p}, nil
}

func (p *ipPattern) match(ips []net.IP) string {
	if len(ips) == 0 {
		return "no IP SAN"
	}
	for _, ip := range ips {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		a = a.Unmap()
		if p.prefix.Contains(a) {
			return ""
		}
		// An IPv6 prefix that spans the mapped range (::ffff:0:0/96), such
		// as ::/0, also holds every IPv4 address in its mapped form.
		if a.Is4() && p.prefix.Addr().Is6() && p.prefix.Contains(netip.AddrFrom16(a.As16())) {
			return ""
		}
	}
	return whyNoMatch
}

// parseURIPattern accepts a URI in the canonical form crypto/x509's URI
// SANs print as, so that a rule that could never match is refused.
func parseURIPattern(s string) (string, *invalid) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return "", badf("percent-encode it", "invalid character %q", c)
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return "", bad("not an absolute URI", `use a URI such as "https://id.example.com/partner-a"`)
	}
	if c := u.String(); c != s {
		return "", bad("not in the canonical form certificates are compared in", "use "+quote(c))
	}
	return s, nil
}

func matchURI(want string, uris []*url.URL) string {
	if len(uris) == 0 {
		return "no URI SAN"
	}
	for _, u := range uris {
		// url.URL.String allocates; san_uri rules are rare and the
		// comparison must be on exactly the form the rule was validated in.
		if u != nil && u.String() == want {
			return ""
		}
	}
	return whyNoMatch
}
