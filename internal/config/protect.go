package config

import (
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

// Defaults of the limits that protect the gateway and its backends.
const (
	DefaultMaxURLLength           = 8 << 10
	DefaultMaxHeaders             = 100
	DefaultMaxQueryParams         = 256
	DefaultMaxJSONDepth           = 32
	DefaultConnectionsPerIP       = 4096
	DefaultConnectionsPerIdentity = 4096
	DefaultInFlightPerIdentity    = 1024
	DefaultFailedHandshakesRate   = "10/s"
	DefaultFailedHandshakesBurst  = 50
	DefaultRateLimitStoreTimeout  = 50 * time.Millisecond
	DefaultRateLimitStoreRetry    = time.Second
	DefaultRateLimitMaxKeys       = 100_000
	DefaultBreakerFailures        = 5
	DefaultBreakerCooldown        = 10 * time.Second
)

// RateLimit configures a token bucket (GCRA) for a route, or at the top
// level the default for every route without one of its own.
type RateLimit struct {
	// Per is identity (one bucket per client certificate), ip (per
	// client IP; IPv6 per /64) or route (one bucket for the route). On a
	// route, none turns the top-level default off. Required.
	Per string `yaml:"per"`
	// Rate is the sustained rate: "100/s", "6000/m", "50000/h", "1000000/d".
	// Required.
	Rate string `yaml:"rate"`
	// Burst is how many requests may pass at once from a full bucket.
	// Default: one period's worth (the rate's count).
	Burst int64 `yaml:"burst"`
	// By chooses the identity key with per: identity: spiffe_id (default:
	// the SPIFFE ID when the certificate has one, else issuer and serial),
	// subject (issuer and subject: a subject's certificates share a
	// bucket) or fingerprint (the certificate's SHA-256).
	By string `yaml:"by"`
}

// RateLimitStore configures where rate limit state lives.
type RateLimitStore struct {
	// Redis is a redis:// or rediss:// URL shared by every gateway.
	// Empty keeps the state in each gateway's memory.
	Redis string `yaml:"redis"`
	// Timeout bounds one check against Redis; a slower check is decided
	// by the local limiter. Default 50ms.
	Timeout Duration `yaml:"timeout"`
	// Retry is how often Redis is tried again while unreachable. Default 1s.
	Retry Duration `yaml:"retry"`
	// MaxKeys bounds the keys each in-memory limit holds. Default 100000.
	MaxKeys int `yaml:"max_keys"`
}

// OpenAPI configures request validation against an OpenAPI 3 document.
type OpenAPI struct {
	// Spec is the document (YAML or JSON, self-contained). Required.
	Spec string `yaml:"spec"`
	// Validate is what is validated: request (the only value, and the
	// default).
	Validate string `yaml:"validate"`
}

// HandshakeLimit is a rate with a burst.
type HandshakeLimit struct {
	// Rate is e.g. "10/s". Required.
	Rate string `yaml:"rate"`
	// Burst defaults to the rate's count.
	Burst int64 `yaml:"burst"`
}

// BackendPool bounds the connections from the gateway to a route's
// backend (the upstream client reads these).
type BackendPool struct {
	// MaxConns bounds open connections to the backend; a request finding
	// none free is answered 503. 0: the upstream client's default (1024).
	MaxConns int `yaml:"max_conns"`
	// IdleTimeout closes connections idle this long. 0: the upstream
	// client's default (10s).
	IdleTimeout Duration `yaml:"idle_timeout"`
}

// CircuitBreaker opens a route's backend after consecutive failures
// (dial errors, timeouts, 502/503/504): requests then get 503 at once
// until a probe after the cooldown succeeds.
type CircuitBreaker struct {
	// Failures is how many consecutive failures open it. Default 5.
	Failures int `yaml:"failures"`
	// Cooldown is how long it stays open before a probe. Default 10s.
	Cooldown Duration `yaml:"cooldown"`
}

func (c *Config) applyProtectionDefaults() {
	l := &c.Limits
	setDefault(&l.MaxURLLength, Size(DefaultMaxURLLength))
	setDefault(&l.MaxHeaders, DefaultMaxHeaders)
	setDefault(&l.MaxQueryParams, DefaultMaxQueryParams)
	setDefault(&l.MaxJSONDepth, DefaultMaxJSONDepth)
	setDefault(&l.ConnectionsPerIP, DefaultConnectionsPerIP)
	setDefault(&l.ConnectionsPerIdentity, DefaultConnectionsPerIdentity)
	setDefault(&l.InFlightPerIdentity, DefaultInFlightPerIdentity)
	if l.FailedHandshakesPerIP == nil {
		l.FailedHandshakesPerIP = &HandshakeLimit{Rate: DefaultFailedHandshakesRate, Burst: DefaultFailedHandshakesBurst}
	}
	if s := c.RateLimitStore; s != nil {
		setDefault(&s.Timeout, Duration(DefaultRateLimitStoreTimeout))
		setDefault(&s.Retry, Duration(DefaultRateLimitStoreRetry))
		setDefault(&s.MaxKeys, DefaultRateLimitMaxKeys)
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.OpenAPI != nil {
			setDefault(&r.OpenAPI.Validate, "request")
		}
		if b := r.CircuitBreaker; b != nil {
			setDefault(&b.Failures, DefaultBreakerFailures)
			setDefault(&b.Cooldown, Duration(DefaultBreakerCooldown))
		}
	}
}

func (c *Config) validateProtection(ps *problems) {
	if c.RateLimit != nil {
		if c.RateLimit.Per == "none" {
			ps.add("rate_limit.per", "none only turns the default off on a route; remove the top-level rate_limit instead")
		} else {
			validateRateLimit(ps, "rate_limit", c.RateLimit)
		}
	}
	if s := c.RateLimitStore; s != nil {
		if s.Redis == "" {
			ps.add("rate_limit_store.redis", "required: a redis://host:port/db URL (or remove rate_limit_store to keep limits in memory)")
		} else if err := ratelimit.CheckRedisURL(s.Redis); err != nil {
			ps.add("rate_limit_store.redis", "%w (use redis://host:6379/0 or rediss:// for TLS)", err)
		}
		if s.Timeout < Duration(time.Millisecond) || s.Timeout > Duration(5*time.Second) {
			ps.add("rate_limit_store.timeout", "must be between 1ms and 5s (every checked request may wait this long)")
		}
		if s.Retry < Duration(10*time.Millisecond) {
			ps.add("rate_limit_store.retry", "must be at least 10ms")
		}
		if s.MaxKeys < 64 {
			ps.add("rate_limit_store.max_keys", "must be at least 64")
		}
	}
	l := &c.Limits
	for _, n := range []struct {
		field string
		v     int
		min   int
	}{
		{"limits.max_url_length", int(l.MaxURLLength), 256}, {"limits.max_headers", l.MaxHeaders, 16},
		{"limits.max_query_params", l.MaxQueryParams, 1}, {"limits.max_json_depth", l.MaxJSONDepth, 2},
		{"limits.connections_per_ip", l.ConnectionsPerIP, 1}, {"limits.connections_per_identity", l.ConnectionsPerIdentity, 1},
		{"limits.in_flight_per_identity", l.InFlightPerIdentity, 1},
	} {
		if n.v < n.min {
			ps.add(n.field, "must be at least %d (every client resource is bounded; write a large number for a loose bound)", n.min)
		}
	}
	validateHandshake(ps, "limits.handshakes_per_ip", l.HandshakesPerIP)
	validateHandshake(ps, "limits.failed_handshakes_per_ip", l.FailedHandshakesPerIP)
	for i := range c.Routes {
		r := &c.Routes[i]
		f := "routes[" + strconv.Itoa(i) + "]"
		if r.RateLimit != nil && r.RateLimit.Per != "none" {
			validateRateLimit(ps, f+".rate_limit", r.RateLimit)
		} else if r.RateLimit != nil && (r.RateLimit.Rate != "" || r.RateLimit.Burst != 0 || r.RateLimit.By != "") {
			ps.add(f+".rate_limit", "per: none turns the limit off; remove rate, burst and by")
		}
		if o := r.OpenAPI; o != nil {
			if o.Spec == "" {
				ps.add(f+".openapi.spec", "required: the OpenAPI 3 document (YAML or JSON) to validate requests against")
			}
			if o.Validate != "request" {
				ps.add(f+".openapi.validate", "unknown value %q (allowed: request)", o.Validate)
			}
		}
		if r.MaxInFlight < 0 {
			ps.add(f+".max_in_flight", "must not be negative (0: no bound for the route)")
		}
		if p := r.BackendPool; p != nil {
			if p.MaxConns < 0 {
				ps.add(f+".backend_pool.max_conns", "must not be negative (0: the default, 1024)")
			}
			if p.IdleTimeout < 0 {
				ps.add(f+".backend_pool.idle_timeout", "must not be negative (0: the default, 10s)")
			}
		}
		if b := r.CircuitBreaker; b != nil {
			if b.Failures < 1 {
				ps.add(f+".circuit_breaker.failures", "must be at least 1")
			}
			if b.Cooldown < Duration(100*time.Millisecond) {
				ps.add(f+".circuit_breaker.cooldown", "must be at least 100ms")
			}
		}
	}
}

func validateRateLimit(ps *problems, f string, r *RateLimit) {
	perOK := true
	switch r.Per {
	case ratelimit.PerIdentity, ratelimit.PerIP, ratelimit.PerRoute:
	case "":
		perOK = false
		ps.add(f+".per", "required: identity, ip or route")
	default:
		perOK = false
		ps.add(f+".per", "unknown value %q (allowed: identity, ip, route, or none on a route)", r.Per)
	}
	rate, err := ratelimit.ParseRate(r.Rate)
	switch {
	case r.Rate == "":
		ps.add(f+".rate", "required: a rate such as 100/s or 6000/m")
	case err != nil:
		ps.add(f+".rate", "%w", err)
	}
	if r.Burst < 0 {
		ps.add(f+".burst", "must not be negative (0: one period's worth)")
	} else if err == nil {
		if _, err := ratelimit.New(ratelimit.Policy{Name: "x", Rate: rate, Burst: r.Burst}, nil); err != nil {
			ps.add(f+".burst", "%w", err)
		}
	}
	switch r.By {
	case "", ratelimit.BySPIFFEID, ratelimit.BySubject, ratelimit.ByFingerprint:
		if r.By != "" && perOK && r.Per != ratelimit.PerIdentity {
			ps.add(f+".by", "only applies with per: identity")
		}
	default:
		ps.add(f+".by", "unknown value %q (allowed: spiffe_id, subject, fingerprint)", r.By)
	}
}

func validateHandshake(ps *problems, f string, h *HandshakeLimit) {
	if h == nil {
		return
	}
	if _, err := ratelimit.ParseRate(h.Rate); err != nil {
		ps.add(f+".rate", "%w", err)
	}
	if h.Burst < 0 {
		ps.add(f+".burst", "must not be negative (0: one period's worth)")
	}
}
