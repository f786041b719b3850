package validate

import (
	"encoding/json"
	"net/http"
)

// ProblemContentType is the media type of Problem bodies (RFC 9457).
const ProblemContentType = "application/problem+json"

// Problem is a refusal: the status to answer with and an RFC 9457 body
// that says which field failed and how, never what the client sent.
type Problem struct {
	// Status is 400, 404, 405, 413, 414, 415 or 431.
	Status int `json:"status"`
	// Title is the status text.
	Title string `json:"title"`
	// Detail says what is wrong, naming the field.
	Detail string `json:"detail"`
	// Field locates the failure: "path.id", "query.limit",
	// "header.X-Tenant", "body" or "body/items/0/qty" (a JSON pointer).
	// Empty when the failure is not one field's.
	Field string `json:"field,omitempty"`
	// Allow is, for 405, the methods the path has (for the Allow header).
	Allow string `json:"-"`
}

func newProblem(status int, field, detail string) *Problem {
	return &Problem{Status: status, Title: http.StatusText(status), Field: field, Detail: detail}
}

// Error implements error for logs: status, field and detail.
func (p *Problem) Error() string {
	if p.Field == "" {
		return http.StatusText(p.Status) + ": " + p.Detail
	}
	return http.StatusText(p.Status) + ": " + p.Field + ": " + p.Detail
}

// JSON returns the problem+json body.
func (p *Problem) JSON() []byte {
	b, _ := json.Marshal(struct {
		Type string `json:"type"`
		*Problem
	}{"about:blank", p})
	return append(b, '\n')
}
