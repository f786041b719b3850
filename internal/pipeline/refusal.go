package pipeline

import (
	"context"
	"errors"
	"net"
	"strconv"

	"github.com/gatehouse/gatehouse/internal/telemetry/metrics"
	"github.com/gatehouse/gatehouse/internal/tlsconf"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// Refusal is an answer gatehouse gives itself instead of the backend's:
// every one is short JSON (or a stage's own body), carries HSTS and gets
// the request's audit record with its full reason (DESIGN.md invariant 8).
type Refusal struct {
	// Status is the HTTP status.
	Status int
	// Public is the short message the client sees.
	Public string
	// Reason is the full reason, for the audit record only.
	Reason string
	// Decision is "deny" (policy refused), "error" (gatehouse or the
	// backend failed) or "limit" (a limit refused). Default "deny".
	Decision string
	// Headers are extra response headers (Allow, Retry-After).
	Headers [][2]string
	// ContentType and Body replace the JSON error form when Body is not
	// nil (validation's application/problem+json).
	ContentType string
	Body        []byte
	// Close asks the engine to close the connection after the answer.
	Close bool
	// Code is a reason code the client may see (a refused client
	// certificate's: "untrusted_issuer", "expired", ...), "" for none.
	Code string
	// Outcome names the refusal for metrics (gate, 421 reason, denial
	// reason). If zero (metrics.ByStatus), Status decides.
	Outcome metrics.Outcome
}

// Render calls set for each response header and returns the status and
// body. hsts is the policy's HSTS value ("" skips it: a caller without a
// policy).
func (rf *Refusal) Render(hsts string, set func(name, value string)) (int, []byte) {
	if hsts != "" {
		set("Strict-Transport-Security", hsts)
	}
	set("X-Content-Type-Options", "nosniff")
	set("Cache-Control", "no-store")
	for _, h := range rf.Headers {
		set(h[0], h[1])
	}
	if rf.Body != nil {
		set("Content-Type", rf.ContentType)
		return rf.Status, rf.Body
	}
	set("Content-Type", "application/json")
	if rf.Code != "" {
		return rf.Status, errorBodyCode(rf.Status, rf.Public, rf.Code)
	}
	return rf.Status, ErrorBody(rf.Status, rf.Public)
}

// errorBodyCode is the JSON error form with a reason code:
// {"error":"...","reason":"...","status":N}.
func errorBodyCode(status int, msg, code string) []byte {
	b := make([]byte, 0, 64+len(msg)+len(code))
	b = append(b, `{"error":`...)
	b = strconv.AppendQuote(b, msg)
	b = append(b, `,"reason":`...)
	b = strconv.AppendQuote(b, code)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	return append(b, "}\n"...)
}

// certRefusedHTTP is the answer to a request on a connection whose client
// certificate was refused under RefuseInHTTP: 400 and the reason code,
// nothing more (DESIGN.md invariant 8); the audit record has the detail
// and the fix.
func certRefusedHTTP(err error) *Refusal {
	return &Refusal{Status: 400, Public: "client certificate not accepted", Code: string(tlsconf.ReasonCode(err)),
		Reason: err.Error(), Decision: "deny"}
}

// ErrorBody is the JSON error form: {"error":"...","status":N}.
func ErrorBody(status int, msg string) []byte {
	b := make([]byte, 0, 48+len(msg))
	b = append(b, `{"error":`...)
	b = strconv.AppendQuote(b, msg)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	return append(b, "}\n"...)
}

// badRequest refuses a malformed request and closes the connection: what
// follows a request gatehouse could not read as one is not trusted.
func badRequest(public, reason string) *Refusal {
	return &Refusal{Status: 400, Public: public, Reason: reason, Decision: "deny", Close: true}
}

func certRefused(reason string, o metrics.Outcome) *Refusal {
	return &Refusal{Status: 403, Public: "client certificate not accepted", Reason: reason, Decision: "deny", Outcome: o}
}

func internalError(reason string) *Refusal {
	return &Refusal{Status: 500, Public: "internal error", Reason: reason, Decision: "error"}
}

// Refuse records rf as the request's answer, for refusals an engine or a
// later step decides (a body too large while streaming, a backend error).
func (ex *Exchange) Refuse(rf *Refusal) { ex.refused(rf) }

func (ex *Exchange) refused(rf *Refusal) {
	if rf.Decision == "" {
		rf.Decision = "deny"
	}
	ex.rec.Decision, ex.rec.Reason = rf.Decision, rf.Reason
	ex.rec.Status = rf.Status
	ex.outcome = rf.Outcome
}

// UpstreamError maps a failed backend exchange to the client's answer:
// 413 when the body passed max_body, 400 when the client's body was
// malformed or cut short, 504 on a timeout, 503 when the backend pool is
// exhausted, 499 (logged only) when the client went away, else 502.
func (ex *Exchange) UpstreamError(err error) *Refusal {
	var ce *ClientBodyError
	var ne net.Error
	switch {
	case errors.Is(err, ErrBodyTooLarge):
		return &Refusal{Status: 413, Public: "request body too large", Reason: "request body larger than max_body", Close: true}
	case errors.As(err, &ce) && (errors.Is(ce.Err, ErrBodyTooSlow) || errors.As(ce.Err, &ne) && ne.Timeout()):
		return &Refusal{Status: 408, Public: "request body too slow", Reason: "reading the client's body: " + ce.Err.Error(), Close: true}
	case errors.As(err, &ce):
		return &Refusal{Status: 400, Public: "bad request body", Reason: "reading the client's body: " + ce.Err.Error(), Close: true}
	case errors.Is(err, context.Canceled):
		return &Refusal{Status: 499, Public: "client closed request", Reason: "client went away", Decision: "error"}
	case errors.Is(err, upstream.ErrTimeout), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return &Refusal{Status: 504, Public: "backend timeout", Reason: "backend timeout: " + err.Error(), Decision: "error"}
	case errors.Is(err, upstream.ErrNoFreeConns):
		return &Refusal{Status: 503, Public: "backend busy", Reason: "backend error: " + err.Error(), Decision: "error"}
	}
	return &Refusal{Status: 502, Public: "backend unavailable", Reason: "backend error: " + err.Error(), Decision: "error"}
}
