package sanitize

import (
	"errors"
	"strconv"
)

// Reasons Path rejects a path. A rejection is a client error (400); the
// *PathError wrapping one says where, for the log.
var (
	ErrNotAbsolute      = errors.New(`path does not start with "/"`)
	ErrBadEscape        = errors.New("malformed percent-escape")
	ErrEncodedSlash     = errors.New(`encoded "/" (%2F)`)
	ErrEncodedBackslash = errors.New(`encoded "\" (%5C)`)
	ErrEncodedDot       = errors.New(`encoded "." (%2E)`)
	ErrEncodedPercent   = errors.New(`encoded "%" (%25)`)
	ErrSemicolon        = errors.New(`";" in path`)
	ErrBackslash        = errors.New(`"\" in path`)
	ErrControl          = errors.New("control character in path")
	ErrInvalidChar      = errors.New(`"?" or "#" in path`)
	ErrAboveRoot        = errors.New(`".." above the root`)
)

// PathError is the error Path returns. Err is one of the Err* values above,
// so callers can use errors.Is.
type PathError struct {
	// Offset is the byte offset in the input where the problem starts.
	Offset int
	// Err is the reason.
	Err error
}

// Error implements error.
func (e *PathError) Error() string {
	return "normalize path: " + e.Err.Error() + " at byte " + strconv.Itoa(e.Offset)
}

// Unwrap returns the reason.
func (e *PathError) Unwrap() error { return e.Err }

// Path normalizes an escaped request path (r.URL.EscapedPath(), or the path
// of the raw request target, without the query) into the one form that
// route and policy matching and the backend all use. The rule:
//
//  1. The path must start with "/".
//  2. Rejected, never decoded: control characters (0x00-0x1F, 0x7F), raw or
//     percent-encoded; "\" raw or as %5C; ";" raw or as %3B; %2F ("/");
//     %2E ("."); %25 ("%"); a "%" not followed by two hex digits; a raw
//     "?" or "#" (they end a path, so the caller passed more than the path).
//  3. Percent-escapes of unreserved characters (A-Z a-z 0-9 "-" "_" "~")
//     are decoded, and every other escape is kept with upper-case hex, as
//     RFC 3986 section 6.2.2 normalizes. Raw bytes RFC 3986 does not allow
//     in a path (space, `"`, "<", ">", "[", "]", "^", "`", "{", "|", "}"
//     and non-ASCII) are percent-encoded.
//  4. Runs of "/" collapse into one; then "." and ".." segments are
//     resolved as in RFC 3986 section 5.2.4. A ".." that would climb above
//     "/" is rejected. A trailing "/" is kept, as is the one a final "." or
//     ".." leaves (RFC 3986: "/a/b/.." is "/a/").
//  5. Nothing else changes: case is preserved (routes match
//     case-sensitively), reserved characters stay as written.
//
// Why this is safe to match on and to forward: a backend decodes the path
// once. Because no escape in the result decodes to "/", "\", ";" or ".",
// decoding cannot add a separator, a path parameter or a dot segment, so
// the backend's segments are ours. Because unreserved escapes are decoded
// and hex is upper-case, two results that differ decode differently (a
// client cannot dodge the "/admin/" route with "/%61dmin/", which a
// backend would serve as /admin/); reserved characters are the one
// exception, since RFC 3986 section 2.2 makes "%3A" and ":" distinct.
// Because %25 is refused, the decoded path holds no "%", so a backend that
// wrongly decodes twice sees the same path as one that decodes once.
// Decoding more than this (for example %2F) would instead let our view and
// the backend's diverge, which is why those escapes are refused, not
// decoded.
//
// The result is a fixed point: Path(Path(p)) == Path(p). A path that is
// already normal is returned without allocating.
func Path(escaped string) (string, error) {
	if escaped == "" || escaped[0] != '/' {
		return "", &PathError{Offset: 0, Err: ErrNotAbsolute}
	}
	// Typical API paths fit the stack buffers; longer ones grow on the heap.
	var outBuf [256]byte
	var startBuf [16]int
	out := outBuf[:0]
	starts := startBuf[:0] // where each kept segment's "/" is in out
	trailing := false
	n := len(escaped)
	for i := 0; i < n; { // escaped[i] == '/'
		segStart := len(out)
		out = append(out, '/')
		k := i + 1
		for k < n && escaped[k] != '/' {
			c := escaped[k]
			if c == '%' {
				if k+2 >= n || !isHex(escaped[k+1]) || !isHex(escaped[k+2]) {
					return "", &PathError{Offset: k, Err: ErrBadEscape}
				}
				v := unhex(escaped[k+1])<<4 | unhex(escaped[k+2])
				if err := rejectDecoded(v); err != nil {
					return "", &PathError{Offset: k, Err: err}
				}
				if isUnreserved(v) {
					out = append(out, v)
				} else {
					out = append(out, '%', upperHex[v>>4], upperHex[v&0xf])
				}
				k += 3
				continue
			}
			switch {
			case c < 0x20 || c == 0x7f:
				return "", &PathError{Offset: k, Err: ErrControl}
			case c == '\\':
				return "", &PathError{Offset: k, Err: ErrBackslash}
			case c == ';':
				return "", &PathError{Offset: k, Err: ErrSemicolon}
			case c == '?' || c == '#':
				return "", &PathError{Offset: k, Err: ErrInvalidChar}
			case isPathChar(c):
				out = append(out, c)
			default:
				out = append(out, '%', upperHex[c>>4], upperHex[c&0xf])
			}
			k++
		}
		last := k >= n
		switch seg := out[segStart+1:]; {
		case len(seg) == 0 || len(seg) == 1 && seg[0] == '.':
			out = out[:segStart]
			trailing = last
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			if len(starts) == 0 {
				return "", &PathError{Offset: i + 1, Err: ErrAboveRoot}
			}
			out = out[:starts[len(starts)-1]]
			starts = starts[:len(starts)-1]
			trailing = last
		default:
			starts = append(starts, segStart)
			trailing = false
		}
		i = k
	}
	if len(out) == 0 || trailing {
		out = append(out, '/')
	}
	if string(out) == escaped {
		return escaped, nil
	}
	return string(out), nil
}

// rejectDecoded says why the byte a percent-escape decodes to is refused.
func rejectDecoded(v byte) error {
	switch {
	case v == '/':
		return ErrEncodedSlash
	case v == '\\':
		return ErrEncodedBackslash
	case v == '.':
		return ErrEncodedDot
	case v == '%':
		return ErrEncodedPercent
	case v == ';':
		return ErrSemicolon
	case v < 0x20 || v == 0x7f:
		return ErrControl
	}
	return nil
}

// isUnreserved reports RFC 3986 unreserved characters other than ".",
// whose escape is refused rather than decoded.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '~'
}

// isPathChar reports the bytes kept raw in a segment: RFC 3986 pchar
// without ";" and without "%" (handled as an escape).
func isPathChar(c byte) bool {
	if isUnreserved(c) {
		return true
	}
	switch c {
	case '.', '!', '$', '&', '\'', '(', ')', '*', '+', ',', '=', ':', '@':
		return true
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

const upperHex = "0123456789ABCDEF"
