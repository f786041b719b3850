package authz

import (
	"net/url"
	"strings"
)

// spiffePattern is a compiled spiffe_id rule.
type spiffePattern struct {
	trustDomain string   // lower-case
	segs        []string // literal segments, or "*" for exactly one segment
	anyTail     bool     // the pattern ended in "**": one or more further segments
}

const spiffePrefix = "spiffe://"

// maxTrustDomain is the RFC 3986 host length limit the SPIFFE ID spec cites.
const maxTrustDomain = 255

const (
	hintSPIFFE     = `use "spiffe://<trust-domain>/<path>"`
	hintTDChars    = "a trust domain holds only letters, digits, '.', '-' and '_'"
	hintSegChars   = "a path segment holds only letters, digits, '.', '-' and '_'"
	hintWildSeg    = `use "*" as a whole segment for exactly one segment, or "**" as the last segment for one or more`
	hintDoubleStar = `use "*" to match exactly one segment`
)

// parseSPIFFEPattern validates a SPIFFE ID pattern per the SPIFFE ID spec,
// with "*" and a trailing "**" allowed as whole path segments.
func parseSPIFFEPattern(s string) (*spiffePattern, *invalid) {
	if !strings.HasPrefix(s, spiffePrefix) {
		return nil, bad("not a SPIFFE ID", hintSPIFFE)
	}
	if strings.ContainsAny(s, "?#") {
		return nil, bad("a SPIFFE ID has no query or fragment", hintSPIFFE)
	}
	td, path, _ := strings.Cut(s[len(spiffePrefix):], "/")
	if iv := checkTrustDomain(td); iv != nil {
		return nil, iv
	}
	p := &spiffePattern{trustDomain: strings.ToLower(td)}
	if path == "" && !strings.HasSuffix(s, "/") {
		return p, nil // the trust domain's own ID
	}
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		last := i == len(segs)-1
		switch {
		case seg == "":
			return nil, bad("empty path segment", `remove the doubled or trailing "/"`)
		case seg == "." || seg == "..":
			return nil, bad("dot segment in path", "write the path out without \".\" or \"..\"")
		case seg == "**":
			if !last {
				return nil, bad(`"**" is only allowed as the last path segment`, hintDoubleStar)
			}
			p.anyTail = true
			continue
		case seg == "*":
		case strings.Contains(seg, "*"):
			return nil, bad(`"*" must be a whole path segment`, hintWildSeg)
		case strings.Contains(seg, "%"):
			return nil, bad("percent-encoding is not allowed in a SPIFFE ID", hintSegChars)
		default:
			if c, ok := firstInvalid(seg, isSegByte); !ok {
				return nil, badf(hintSegChars, "invalid character %q in path", c)
			}
		}
		p.segs = append(p.segs, seg)
	}
	return p, nil
}

func checkTrustDomain(td string) *invalid {
	switch {
	case td == "":
		return bad("missing trust domain", hintSPIFFE)
	case strings.Contains(td, "*"):
		return bad("wildcards are not allowed in the trust domain", "write the trust domain out")
	case strings.Contains(td, "@"):
		return bad("a SPIFFE ID has no userinfo", hintSPIFFE)
	case strings.Contains(td, ":"):
		return bad("a SPIFFE ID has no port", hintSPIFFE)
	case strings.Contains(td, "%"):
		return bad("percent-encoding is not allowed in a SPIFFE ID", hintTDChars)
	case len(td) > maxTrustDomain:
		return badf("", "trust domain longer than %d bytes", maxTrustDomain)
	}
	if c, ok := firstInvalid(td, isTrustDomainByte); !ok {
		return badf(hintTDChars, "invalid character %q in trust domain", c)
	}
	return nil
}

// match checks the leaf's URI SANs against the pattern. Per the X.509-SVID
// spec an SVID carries exactly one URI SAN; a leaf with more is not an SVID.
func (p *spiffePattern) match(uris []*url.URL) string {
	switch len(uris) {
	case 0:
		return "no URI SAN"
	case 1:
	default:
		return "more than one URI SAN (an SVID has exactly one)"
	}
	td, path, ok := spiffeID(uris[0])
	if !ok {
		return "URI SAN is not a valid SPIFFE ID"
	}
	if !asciiEqualFold(td, p.trustDomain) || !p.matchPath(path) {
		return whyNoMatch
	}
	return ""
}

// matchPath matches a validated SPIFFE ID path ("" or "/seg/seg...", every
// segment non-empty) segment by segment, without allocating.
func (p *spiffePattern) matchPath(path string) bool {
	rest := path
	for _, want := range p.segs {
		if rest == "" {
			return false
		}
		var seg string
		seg, rest = nextSegment(rest)
		if want != "*" && want != seg {
			return false
		}
	}
	if p.anyTail {
		return rest != ""
	}
	return rest == ""
}

// nextSegment splits "/a/b" into "a" and "/b".
func nextSegment(path string) (seg, rest string) {
	path = path[1:]
	if i := strings.IndexByte(path, '/'); i >= 0 {
		return path[:i], path[i:]
	}
	return path, ""
}

// spiffeID returns the trust domain and path of u when u is a valid SPIFFE
// ID. crypto/x509 parsed the SAN with net/url, which decodes
// percent-escapes; RawPath is set exactly when the path was written with
// escapes, and a host escape can only decode to '%' or non-ASCII, which the
// character checks refuse. (net/url lower-cases the scheme and drops an
// empty "#", so "SPIFFE://td/x" and "spiffe://td/x#" are read as
// spiffe://td/x: the same identity, so nothing is gained by refusing them.)
func spiffeID(u *url.URL) (td, path string, ok bool) {
	if u == nil || u.Scheme != "spiffe" || u.Opaque != "" || u.User != nil ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.RawFragment != "" ||
		u.RawPath != "" || u.OmitHost {
		return "", "", false
	}
	if checkTrustDomain(u.Host) != nil || !validSPIFFEPath(u.Path) {
		return "", "", false
	}
	return u.Host, u.Path, true
}

// validSPIFFEPath reports whether path is empty or a sequence of "/segment"
// with every segment non-empty, not "." or "..", and of allowed characters.
func validSPIFFEPath(path string) bool {
	if path == "" {
		return true
	}
	if path[0] != '/' {
		return false
	}
	for rest := path; rest != ""; {
		var seg string
		seg, rest = nextSegment(rest)
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		if _, ok := firstInvalid(seg, isSegByte); !ok {
			return false
		}
	}
	return true
}

func isTrustDomainByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_'
}

func isSegByte(c byte) bool { return isTrustDomainByte(c) }

// firstInvalid returns the first byte of s for which valid is false.
func firstInvalid(s string, valid func(byte) bool) (byte, bool) {
	for i := 0; i < len(s); i++ {
		if !valid(s[i]) {
			return s[i], false
		}
	}
	return 0, true
}

// asciiEqualFold reports whether s equals lower, a lower-case string,
// folding ASCII letters only. strings.EqualFold would also fold Unicode
// look-alikes such as the Kelvin sign (U+212A) to "k".
func asciiEqualFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
