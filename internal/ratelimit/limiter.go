package ratelimit

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Store holds the GCRA state (one "theoretical arrival time" per key) of
// one Limiter. Memory is the default; Redis shares it between gateways.
type Store interface {
	// Take spends one token of key's bucket, given the emission interval
	// and the burst tolerance (both in nanoseconds). It returns whether
	// the token was there and wait: the key's theoretical arrival time
	// after the call minus now when allowed, or what it would have been
	// when refused (the state is then left unchanged).
	Take(key string, interval, tolerance int64) (allowed bool, wait int64)
}

// Limiter applies one Policy to any number of keys. It is safe for
// concurrent use.
type Limiter struct {
	policy    Policy
	store     Store
	interval  int64 // ns per token
	tolerance int64 // ns: burst * interval
	// policyHeader is the RateLimit-Policy value, rendered once.
	policyHeader string
}

// New returns a Limiter for p keeping its state in s.
func New(p Policy, s Store) (*Limiter, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	if p.Burst == 0 {
		p.Burst = p.Rate.N
	}
	l := &Limiter{policy: p, store: s, interval: int64(p.Rate.Interval())}
	if p.Burst > math.MaxInt64/4/l.interval {
		return nil, fmt.Errorf("burst %d at rate %s spans too long a time", p.Burst, p.Rate)
	}
	l.tolerance = l.interval * p.Burst
	// draft-ietf-httpapi-ratelimit-headers: q is the quota, w the window
	// in seconds over which it is granted (the rate's period).
	l.policyHeader = `"` + p.Name + `";q=` + strconv.FormatInt(p.Rate.N, 10) + ";w=" + strconv.FormatInt(int64(p.Rate.Per/time.Second), 10)
	return l, nil
}

// Policy returns the limiter's policy, with Burst filled in.
func (l *Limiter) Policy() Policy { return l.policy }

// Allow spends one token of key's bucket. It does not allocate.
func (l *Limiter) Allow(key string) Decision {
	ok, wait := l.store.Take(key, l.interval, l.tolerance)
	d := Decision{Allowed: ok, Limit: l.policy.Name, Key: key, limiter: l}
	if ok {
		d.Remaining = (l.tolerance - wait) / l.interval
		d.Reset = time.Duration(wait)
	} else {
		d.RetryAfter = time.Duration(wait - l.tolerance)
		d.Reset = time.Duration(wait - l.interval)
	}
	return d
}

// Decision is the outcome of one Allow: whether the request passes, and
// what the response headers and the audit record say about it.
type Decision struct {
	// Allowed is false when the request must be refused with 429.
	Allowed bool
	// Limit is the policy's name and Key the bucket's key, for the audit
	// record (a key may name a client: never use it as a metric label).
	Limit, Key string
	// Remaining is how many more requests would pass right now.
	Remaining int64
	// RetryAfter is, when refused, how long until one request would pass.
	RetryAfter time.Duration
	// Reset is how long until the bucket is full again.
	Reset time.Duration

	limiter *Limiter
}

// RetryAfterSeconds is the Retry-After value for a refusal: whole seconds,
// rounded up, at least 1.
func (d *Decision) RetryAfterSeconds() int64 { return ceilSeconds(d.RetryAfter) }

// PolicyHeader is the RateLimit-Policy field value, e.g. `"orders";q=100;w=1`.
func (d *Decision) PolicyHeader() string {
	if d.limiter == nil {
		return ""
	}
	return d.limiter.policyHeader
}

// AppendHeader appends the RateLimit field value, e.g. `"orders";r=0;t=1`:
// r the remaining quota, t the seconds until a refused request may retry
// (until the bucket is full for an allowed one).
func (d *Decision) AppendHeader(dst []byte) []byte {
	t := d.Reset
	if !d.Allowed {
		t = d.RetryAfter
	}
	dst = append(dst, '"')
	dst = append(dst, d.Limit...)
	dst = append(dst, `";r=`...)
	dst = strconv.AppendInt(dst, d.Remaining, 10)
	dst = append(dst, ";t="...)
	return strconv.AppendInt(dst, ceilSecondsOrZero(t), 10)
}

// Header is AppendHeader as a string.
func (d *Decision) Header() string { return string(d.AppendHeader(make([]byte, 0, 32+len(d.Limit)))) }

func ceilSeconds(d time.Duration) int64 {
	if s := ceilSecondsOrZero(d); s > 0 {
		return s
	}
	return 1
}

func ceilSecondsOrZero(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
