package validate

import (
	"strconv"
	"strings"
)

// Limits bound a request without needing an OpenAPI document. A zero
// field means no bound.
type Limits struct {
	// MaxURLLength bounds the request target (path and query), answered
	// with 414.
	MaxURLLength int
	// MaxHeaders bounds the number of header fields, answered with 431.
	MaxHeaders int
	// MaxQueryParams bounds the number of query parameters, answered
	// with 400.
	MaxQueryParams int
	// MaxJSONDepth bounds how deeply a JSON body nests (validated routes
	// only: elsewhere the body is not parsed), answered with 400.
	MaxJSONDepth int
}

// Check applies the URL, header and query bounds. target is the request
// target as sent (path and query); headers the number of header fields.
// It returns nil when the request is within them, and allocates nothing
// then.
func (l *Limits) Check(target string, headers int, rawQuery string) *Problem {
	if l.MaxURLLength > 0 && len(target) > l.MaxURLLength {
		return newProblem(414, "", "the request target is longer than "+strconv.Itoa(l.MaxURLLength)+" bytes")
	}
	if l.MaxHeaders > 0 && headers > l.MaxHeaders {
		return newProblem(431, "", "the request has more than "+strconv.Itoa(l.MaxHeaders)+" header fields")
	}
	if l.MaxQueryParams > 0 && rawQuery != "" {
		n := 0
		for part := range strings.SplitSeq(rawQuery, "&") {
			if part != "" {
				n++
			}
		}
		if n > l.MaxQueryParams {
			return newProblem(400, "query", "the request has more than "+strconv.Itoa(l.MaxQueryParams)+" query parameters")
		}
	}
	return nil
}

// jsonDepth returns how deeply b nests arrays and objects, stopping early
// once it passes limit. It does not validate b (the decoder does); strings
// are skipped so that brackets inside them do not count.
func jsonDepth(b []byte, limit int) int {
	depth, deepest := 0, 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '[', '{':
			depth++
			if depth > deepest {
				deepest = depth
				if deepest > limit {
					return deepest
				}
			}
		case ']', '}':
			depth--
		}
	}
	return deepest
}
