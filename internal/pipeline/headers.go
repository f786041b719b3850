package pipeline

import "github.com/gatehouse/gatehouse/internal/sanitize"

// equalFold and hasFoldedPrefix compare header names as backends read them
// (ASCII case-insensitively, "_" as "-"); see sanitize.FoldedEqual.
func equalFold(name, lower string) bool { return sanitize.FoldedEqual(name, lower) }

func hasFoldedPrefix(name, prefix string) bool { return sanitize.HasFoldedPrefix(name, prefix) }

// hopByHop are request headers that describe one connection, or framing
// and values gatehouse sets itself; they are never copied to the backend
// (the backend request is framed afresh, engines.md pitfall 12).
var hopByHop = []string{
	"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
	"te", "trailer", "transfer-encoding", "upgrade", "http2-settings",
	"host", "content-length", "expect", "x-request-id",
}

// dropRequestHeader reports whether a client header never reaches the
// backend: hop-by-hop and framing headers, and every spelling of the
// identity, origin and forwarding headers and of the configured extras
// (sanitize.HeaderStripper).
func (p *Policy) dropRequestHeader(name string) bool {
	for _, h := range hopByHop {
		if equalFold(name, h) {
			return true
		}
	}
	return p.Stripper.Strips(name)
}

// responseHopByHop are backend response headers that are not relayed:
// connection-specific ones, framing (the engine frames the response) and
// the HSTS header, which is always gatehouse's own.
var responseHopByHop = []string{
	"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
	"trailer", "content-length", "strict-transport-security",
}

// RelayResponseHeader reports whether a backend response header is passed
// to the client. Upgrade and Connection are set by the engine itself on a
// 101.
func RelayResponseHeader(name string) bool {
	for _, h := range responseHopByHop {
		if equalFold(name, h) {
			return false
		}
	}
	return true
}

// tokenListContains reports whether a comma-separated header value names
// token (case-insensitive, "_" not folded).
func tokenListContains(list, token string) bool {
	for list != "" {
		var item string
		item, list = cutComma(list)
		if asciiEqualFold(item, token) {
			return true
		}
	}
	return false
}

func cutComma(s string) (item, rest string) {
	i := 0
	for i < len(s) && s[i] != ',' {
		i++
	}
	item = trimOWS(s[:i])
	if i < len(s) {
		rest = s[i+1:]
	}
	return item, rest
}

func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// foldToken lower-cases ASCII and reads "_" as "-", the form equalFold
// compares against.
func foldToken(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' || c == '_' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				switch c := b[j]; {
				case 'A' <= c && c <= 'Z':
					b[j] = c + 'a' - 'A'
				case c == '_':
					b[j] = '-'
				}
			}
			return string(b)
		}
	}
	return s
}
