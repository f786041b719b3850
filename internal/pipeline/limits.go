package pipeline

import (
	"context"
	"errors"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/guard"
	"github.com/gatehouse/gatehouse/internal/telemetry/metrics"
	"github.com/gatehouse/gatehouse/internal/upstream"
	"github.com/gatehouse/gatehouse/internal/validate"
)

// limits runs the guard's decisions once the request is authorized: the
// bounds that need no document (URL length, header and query counts), the
// route's rate limit and in-flight bounds (the slots are held until
// Finish), and, for a request without a body, OpenAPI validation. A
// request with a body on a validated route is validated by CheckBody,
// once the engine has read it.
func (ex *Exchange) limits(r Request) *Refusal {
	g := ex.policy.Guard
	if g == nil {
		return nil
	}
	if rf := g.CheckLimits(ex.target, ex.headers, ex.query); rf != nil {
		return fromGuard(rf, "deny")
	}
	rt := ex.route.Guard
	if rt == nil {
		return nil
	}
	c := guard.Client{Keys: ex.v.keys, IP: ex.conn.LimitIP}
	t, rf := rt.Admit(&c)
	ex.ticket = t
	if rf != nil {
		ex.SetLimit(rf.Limit, rf.Key)
		o := metrics.DeniedRateLimited
		if rf.Status != http.StatusTooManyRequests {
			o = metrics.DeniedInFlight
		}
		return outcome(fromGuard(rf, "limit"), o)
	}
	if t.Limit != "" {
		ex.SetLimit(t.Limit, t.Key)
	}
	if rt.Validator != nil && ex.contentLength == 0 {
		return ex.validate(r, nil)
	}
	return nil
}

// NeedsBody reports whether the route validates request bodies and this
// request has one: the engine must then read the body whole (through
// Body, so max_body holds) and pass it to CheckBody before forwarding.
func (ex *Exchange) NeedsBody() bool {
	return ex.route != nil && ex.route.Guard != nil && ex.route.Guard.Validator != nil && ex.contentLength != 0
}

// CheckBody validates the request with its body against the route's
// OpenAPI document. A refusal is already recorded for the audit.
func (ex *Exchange) CheckBody(r Request, body []byte) *Refusal {
	if rf := ex.validate(r, body); rf != nil {
		ex.refused(rf)
		return rf
	}
	return nil
}

func (ex *Exchange) validate(r Request, body []byte) *Refusal {
	req := validate.Request{Method: ex.method, Path: ex.path, RawQuery: ex.query, Body: body,
		Header: func(name string) []string {
			c := headerCollector{name: name}
			r.VisitHeaders(&c)
			return c.values
		}}
	if rf := ex.route.Guard.Validate(&req); rf != nil {
		return outcome(fromGuard(rf, "deny"), metrics.RefusedValidation)
	}
	return nil
}

// BackendAllowed asks the route's circuit breaker whether its backend may
// be tried; on a refusal (503 at once) the backend is not called. Every
// nil answer must be followed by BackendDone.
func (ex *Exchange) BackendAllowed() *Refusal {
	if ex.route == nil || ex.route.Guard == nil {
		return nil
	}
	if ok, rf := ex.route.Guard.Backend(); !ok {
		out := outcome(fromGuard(rf, "error"), metrics.FailedCircuitOpen)
		ex.refused(out)
		return out
	}
	return nil
}

// BackendDone reports the backend exchange's outcome to the circuit
// breaker: a failure is an error (dial, timeout) or a 502/503/504 answer.
// The client's own faults (a body too large or cut short, going away) and
// a full pool say nothing about the backend and are not reported.
func (ex *Exchange) BackendDone(err error, status int) {
	if ex.route == nil || ex.route.Guard == nil {
		return
	}
	var ce *ClientBodyError
	switch {
	case errors.Is(err, ErrBodyTooLarge), errors.As(err, &ce), errors.Is(err, context.Canceled), errors.Is(err, upstream.ErrNoFreeConns):
		// Says nothing about the backend (a probe's slot frees itself
		// after the cooldown).
	default:
		ex.route.Guard.BackendDone(err == nil && status != 502 && status != 503 && status != 504)
	}
}

// headerCollector gathers the values of one header field (validation
// asks only for the headers the operation declares).
type headerCollector struct {
	name   string // canonical form
	values []string
}

func (c *headerCollector) VisitHeader(name, value string) bool {
	if http.CanonicalHeaderKey(name) == c.name {
		c.values = append(c.values, value)
	}
	return true
}

func fromGuard(rf *guard.Refusal, decision string) *Refusal {
	return &Refusal{Status: rf.Status, Public: rf.Public, Reason: rf.Reason, Decision: decision,
		Headers: rf.Headers, ContentType: rf.ContentType, Body: rf.Body}
}
