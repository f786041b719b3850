package sanitize

import (
	"net/http"
	"strings"
)

// originExact are header names (lower case, "-" form) that backends trust
// for the client's origin or for a user identity established upstream, and
// that only gatehouse may set: removed as whole names.
var originExact = []string{
	"forwarded",     // RFC 7239
	"x-real-ip",     // nginx habit
	"x-remote-user", // auth proxies
	"x-remote-addr", // PHP/CGI habits
	"x-remote-ip",   //
	"x-client-ip",   // several frameworks (also covered by x-client-)
	"x-cluster-client-ip",
	"x-originating-ip",
	"true-client-ip",   // Akamai, Cloudflare Enterprise
	"cf-connecting-ip", // Cloudflare
	"fastly-client-ip", // Fastly
	"x-original-url",   // IIS URL Rewrite: can move a request to another path
	"x-rewrite-url",    // IIS / Symfony: same
	"x-original-uri",   // nginx auth_request habit
	"x-original-host",
	"x-host",
	"x-http-method-override", // changes the method a backend acts on
	"x-http-method",
	"x-method-override",
	"x-request-id",   // gatehouse sets its own per request
	"http2-settings", // only meaningful with Upgrade: h2c, which is never passed
}

// originPrefixes are name prefixes (lower case, "-" form) of origin
// headers: every X-Forwarded-* (For, Host, Proto, Port, Prefix, Server,
// User, Uri, Ssl, ...).
var originPrefixes = []string{
	"x-forwarded-",
}

// IsForwardingHeader reports whether name is a header that backends take
// for the client's origin or an upstream identity (X-Forwarded-*,
// Forwarded, X-Real-IP, X-Remote-User, X-Original-URL, ...), comparing
// ASCII case-insensitively with "_" read as "-". It does not allocate.
func IsForwardingHeader(name string) bool { return isForwarding(name) }

func isForwarding[T string | []byte](name T) bool {
	for _, n := range originExact {
		if len(name) == len(n) && foldedPrefix(name, n) {
			return true
		}
	}
	for _, p := range originPrefixes {
		if foldedPrefix(name, p) {
			return true
		}
	}
	return false
}

func isIdentity[T string | []byte](name T) bool {
	for _, n := range identityExact {
		if len(name) == len(n) && foldedPrefix(name, n) {
			return true
		}
	}
	for _, p := range identityPrefixes {
		if foldedPrefix(name, p) {
			return true
		}
	}
	return false
}

// FoldedEqual reports whether name equals lower (lower case, "-" form),
// comparing ASCII case-insensitively and reading "_" as "-", as backends
// that fold header names into environment variables do.
func FoldedEqual(name, lower string) bool {
	return len(name) == len(lower) && foldedPrefix(name, lower)
}

// HasFoldedPrefix reports whether name starts with prefix (lower case, "-"
// form) under the same folding as FoldedEqual.
func HasFoldedPrefix(name, prefix string) bool { return foldedPrefix(name, prefix) }

// foldedPrefix reports whether name, lower-cased (ASCII) with "_" read as
// "-", starts with prefix, which is lower case in "-" form.
func foldedPrefix[T string | []byte](name T, prefix string) bool {
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := name[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// HeaderStripper decides which client request headers never reach a
// backend: every spelling (any case, "_" for "-") of the identity headers
// (IsIdentityHeader), of the origin and forwarding headers
// (IsForwardingHeader), and of the extra names configured. The zero value
// strips the built-in lists only. A HeaderStripper is immutable and safe
// for concurrent use.
type HeaderStripper struct {
	extra []string // lower case, "-" form
}

// NewHeaderStripper returns a stripper for the built-in lists plus extra
// header names (matched as whole names in every spelling).
func NewHeaderStripper(extra []string) *HeaderStripper {
	s := &HeaderStripper{}
	for _, e := range extra {
		s.extra = append(s.extra, strings.ReplaceAll(strings.ToLower(e), "_", "-"))
	}
	return s
}

// Strips reports whether a request header called name is removed.
func (s *HeaderStripper) Strips(name string) bool { return strips(s, name) }

// StripsBytes is Strips for a name held as bytes (fasthttp); it does not
// allocate.
func (s *HeaderStripper) StripsBytes(name []byte) bool { return strips(s, name) }

func strips[T string | []byte](s *HeaderStripper, name T) bool {
	if isIdentity(name) || isForwarding(name) {
		return true
	}
	if s != nil {
		for _, n := range s.extra {
			if len(name) == len(n) && foldedPrefix(name, n) {
				return true
			}
		}
	}
	return false
}

// StripHeader deletes every header of h that s strips, looking at every
// key as stored (http.Header keeps non-canonical names such as
// "x_forwarded_for" as they arrived, where h.Del would miss them). A
// Trailer header loses the names of stripped headers, and goes when none
// is left.
func (s *HeaderStripper) StripHeader(h http.Header) {
	for name := range h {
		if s.Strips(name) {
			delete(h, name)
		}
	}
	if tr, ok := h["Trailer"]; ok {
		kept := FilterTrailer(strings.Join(tr, ","), s.Strips)
		if kept == "" {
			delete(h, "Trailer")
		} else {
			h["Trailer"] = []string{kept}
		}
	}
}

// FilterTrailer returns the Trailer header value v without the names for
// which drop is true, joined by ", " ("" when none is left). A client
// announcing "Trailer: X-Forwarded-Client-Cert" must not get a forged
// identity into the backend's view after the headers were cleaned.
func FilterTrailer(v string, drop func(string) bool) string {
	var kept []string
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if name == "" || drop(name) {
			continue
		}
		kept = append(kept, name)
	}
	return strings.Join(kept, ", ")
}
