package sanitize

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// Reasons Authority and SplitTarget refuse their input (400 for the client).
var (
	ErrEmptyAuthority = errors.New("empty host")
	ErrAuthorityChar  = errors.New("a byte a host name cannot hold")
	ErrAuthorityPort  = errors.New("port is not a number from 1 to 65535")
	ErrAuthorityIPv6  = errors.New("malformed IPv6 literal")
	ErrAuthorityLabel = errors.New("empty label in host name")
	ErrTarget         = errors.New("request target is neither a path, an absolute URL nor *")
	ErrFragment       = errors.New(`"#" in request target`)
)

// AuthorityError says what is wrong with an authority (Host header or
// HTTP/2 :authority), quoting it for the log.
type AuthorityError struct {
	Authority string
	Err       error
}

func (e *AuthorityError) Error() string {
	return "authority " + strconv.Quote(e.Authority) + ": " + e.Err.Error()
}

func (e *AuthorityError) Unwrap() error { return e.Err }

// Authority parses a Host header or :authority strictly: a host name
// (letters, digits, "-", "_", "." in non-empty labels, an optional final
// "."), an IPv4 address, or an IPv6 literal in brackets, then optionally
// ":" and a port from 1 to 65535. Nothing else: no userinfo, no second
// host after a comma or space, no empty port, no zone, no percent-escape.
// host comes back lower-cased, without a trailing dot and, for IPv6,
// without brackets; port is "" when none was given.
//
// Everything that reads the authority (the route, the 421 check, the
// X-Forwarded-Host and Host the backend receives) uses this one result,
// so "a.example:443,b.example" cannot be routed as one host and read by a
// backend as another.
func Authority(raw string) (host, port string, err error) {
	fail := func(e error) (string, string, error) { return "", "", &AuthorityError{Authority: raw, Err: e} }
	if raw == "" {
		return fail(ErrEmptyAuthority)
	}
	rest := raw
	if rest[0] == '[' {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return fail(ErrAuthorityIPv6)
		}
		a, err := netip.ParseAddr(rest[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return fail(ErrAuthorityIPv6)
		}
		host, rest = a.String(), rest[end+1:]
		if rest == "" {
			return host, "", nil
		}
		if rest[0] != ':' {
			return fail(ErrAuthorityChar)
		}
		p, ok := parsePort(rest[1:])
		if !ok {
			return fail(ErrAuthorityPort)
		}
		return host, p, nil
	}
	h, p, hasPort := strings.Cut(rest, ":")
	if hasPort {
		var ok bool
		if p, ok = parsePort(p); !ok {
			return fail(ErrAuthorityPort)
		}
	}
	if h == "" {
		return fail(ErrEmptyAuthority)
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" || h[len(h)-1] == '.' {
		return fail(ErrAuthorityLabel)
	}
	lower := false
	prev := byte('.')
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		case 'A' <= c && c <= 'Z':
			lower = true
		case c == '.':
			if prev == '.' {
				return fail(ErrAuthorityLabel)
			}
		default:
			return fail(ErrAuthorityChar)
		}
		prev = c
	}
	if lower {
		h = strings.ToLower(h)
	}
	return h, p, nil
}

// parsePort accepts 1 to 5 decimal digits naming a port from 1 to 65535,
// and returns it without leading zeros.
func parsePort(s string) (string, bool) {
	if s == "" || len(s) > 5 {
		return "", false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return "", false
		}
		n = n*10 + int(c-'0')
	}
	if n < 1 || n > 65535 {
		return "", false
	}
	if s[0] == '0' {
		return strconv.Itoa(n), true
	}
	return s, true
}

// Target is a request target split into its parts, before any decoding.
type Target struct {
	// Asterisk is the "*" of OPTIONS * (RFC 9112 asterisk-form).
	Asterisk bool
	// Authority is set for absolute-form ("http://host/path"); the caller
	// must check that it agrees with Host.
	Authority string
	// Path is the raw path, as the client sent it ("/" for an
	// absolute-form target without one). Normalize it with Path.
	Path string
	// Query is the raw query without "?" ("" when none).
	Query string
}

// SplitTarget splits a raw request target (the HTTP/1.1 request line's
// second word, or HTTP/2's :path) without decoding anything, so Path sees
// exactly what the client sent. (net/url's EscapedPath re-encodes the
// decoded path when the raw one holds a byte it would escape differently,
// such as "|" or 0xFF, and %2e or %2f would then reach Path decoded.)
func SplitTarget(target string) (Target, error) {
	var t Target
	if target == "*" {
		t.Asterisk = true
		return t, nil
	}
	if strings.IndexByte(target, '#') >= 0 {
		return t, ErrFragment
	}
	if target != "" && target[0] != '/' {
		scheme, rest, ok := strings.Cut(target, "://")
		if !ok || !strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https") {
			return t, ErrTarget
		}
		end := strings.IndexAny(rest, "/?")
		if end < 0 {
			end = len(rest)
		}
		t.Authority, target = rest[:end], rest[end:]
		if t.Authority == "" || strings.IndexByte(t.Authority, '@') >= 0 {
			return t, ErrTarget
		}
		if target == "" || target[0] == '?' {
			target = "/" + target
		}
	}
	if target == "" {
		return t, ErrTarget
	}
	t.Path, t.Query, _ = strings.Cut(target, "?")
	return t, nil
}
