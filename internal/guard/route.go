package guard

import (
	"strconv"

	"github.com/gatehouse/gatehouse/internal/concurrency"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/validate"
)

// Client is who is asking, computed once per connection.
type Client struct {
	// Keys are ratelimit.KeysOf(identity); zero when the client sent no
	// certificate (per: identity limits then key by IP).
	Keys ratelimit.IdentityKeys
	// IP is ratelimit.IPKey of the client's address.
	IP string
}

// Refusal is an answer the guard gives instead of the backend: status,
// extra headers and a short body, plus for the audit record the reason and
// which limit refused for which key.
type Refusal struct {
	Status      int
	Headers     [][2]string // Retry-After, RateLimit-Policy, RateLimit, Allow
	ContentType string
	Body        []byte
	// Public is the short message for a JSON error form, when the
	// pipeline renders its own.
	Public string
	// Reason is the full reason, for logs and the audit record only.
	Reason string
	// Limit and Key name the limit and the bucket's key (may name a
	// client: never a metric label).
	Limit, Key string
}

// Ticket is an admitted request's hold on in-flight slots. Done must be
// called once when the request is finished.
type Ticket struct {
	gate  *concurrency.Gate
	perID *concurrency.Keyed
	idKey string
	// Limit and Key name the rate limit that admitted the request, for the
	// audit record ("" when none applied).
	Limit, Key string
}

// Done releases the ticket's slots.
func (t *Ticket) Done() {
	if t.gate != nil {
		t.gate.Release()
		t.gate = nil
	}
	if t.perID != nil {
		t.perID.Release(t.idKey)
		t.perID = nil
	}
}

var busyBody = []byte(concurrency.BusyBody)

// Admit applies the route's rate limit, then its in-flight bounds (the
// route's and the identity's). Refusals are 429 with Retry-After and the
// RateLimit headers, or 503 with a short JSON body: nothing queues. An
// admitted request allocates nothing here. A nil r admits everything.
func (r *Route) Admit(c *Client) (Ticket, *Refusal) {
	var t Ticket
	if r == nil {
		return t, nil
	}
	if r.rate != nil {
		key := r.rateKey(c)
		d := r.rate.Allow(key)
		t.Limit, t.Key = d.Limit, d.Key
		if !d.Allowed {
			return t, rateRefusal(&d)
		}
	}
	idKey := c.Keys.Key("")
	if idKey == "" {
		idKey = c.IP
	}
	if r.perID != nil && idKey != "" {
		if !r.perID.Acquire(idKey) {
			return t, &Refusal{Status: 503, Headers: [][2]string{{"Retry-After", "1"}}, ContentType: "application/json", Body: busyBody,
				Public: "too many requests in flight", Reason: "in-flight requests per identity at limits.in_flight_per_identity",
				Limit: "in_flight_per_identity", Key: idKey}
		}
		t.perID, t.idKey = r.perID, idKey
	}
	if r.inFlight != nil && !r.inFlight.Acquire() {
		t.Done()
		return t, &Refusal{Status: 503, Headers: [][2]string{{"Retry-After", "1"}}, ContentType: "application/json", Body: busyBody,
			Public: "too many requests in flight", Reason: "route " + r.name + " at max_in_flight", Limit: "max_in_flight", Key: r.name}
	}
	t.gate = r.inFlight
	return t, nil
}

func (r *Route) rateKey(c *Client) string {
	switch r.per {
	case ratelimit.PerRoute:
		return "route"
	case ratelimit.PerIP:
		return c.IP
	}
	if k := c.Keys.Key(r.by); k != "" {
		return k
	}
	return c.IP // no certificate on this route: the client's IP
}

func rateRefusal(d *ratelimit.Decision) *Refusal {
	return &Refusal{
		Status: 429,
		Headers: [][2]string{
			{"Retry-After", strconv.FormatInt(d.RetryAfterSeconds(), 10)},
			{"RateLimit-Policy", d.PolicyHeader()},
			{"RateLimit", d.Header()},
		},
		ContentType: "application/json",
		Body:        []byte(`{"error":"rate limit exceeded","status":429}` + "\n"),
		Public:      "rate limit exceeded",
		Reason:      "rate limit " + d.Limit + " exceeded; retry after " + d.RetryAfter.String(),
		Limit:       d.Limit, Key: d.Key,
	}
}

// Validate checks a request against the route's OpenAPI document. It
// returns nil when the route has none or the request conforms.
func (r *Route) Validate(req *validate.Request) *Refusal {
	if r == nil || r.Validator == nil {
		return nil
	}
	return problemRefusal(r.Validator.Validate(req))
}

// CheckLimits applies the bounds that need no document (URL length,
// header count, query parameter count) to any request.
func (g *Guard) CheckLimits(target string, headers int, rawQuery string) *Refusal {
	return problemRefusal(g.Limits.Check(target, headers, rawQuery))
}

func problemRefusal(p *validate.Problem) *Refusal {
	if p == nil {
		return nil
	}
	rf := &Refusal{Status: p.Status, ContentType: validate.ProblemContentType, Body: p.JSON(), Public: p.Title, Reason: "validation: " + p.Error()}
	if p.Allow != "" {
		rf.Headers = [][2]string{{"Allow", p.Allow}}
	}
	return rf
}

// Backend reports whether the route's backend may be tried now; on false
// answer the refusal. Every true must be followed by BackendDone.
func (r *Route) Backend() (bool, *Refusal) {
	if r == nil || r.Breaker == nil || r.Breaker.Allow() {
		return true, nil
	}
	return false, &Refusal{Status: 503, Headers: [][2]string{{"Retry-After", "1"}}, ContentType: "application/json",
		Body:   []byte(`{"error":"backend unavailable","status":503}` + "\n"),
		Public: "backend unavailable", Reason: "circuit breaker open for route " + r.name}
}

// BackendDone reports the outcome of a backend exchange Backend allowed:
// ok false for a dial error, a timeout or a 502/503/504 answer.
func (r *Route) BackendDone(ok bool) {
	if r != nil && r.Breaker != nil {
		r.Breaker.Done(ok)
	}
}
