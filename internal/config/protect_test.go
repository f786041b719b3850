package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestProtectionDefaults(t *testing.T) {
	f, err := Parse("g.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	l := f.Config.Limits
	if l.MaxURLLength != DefaultMaxURLLength || l.MaxHeaders != DefaultMaxHeaders || l.MaxQueryParams != DefaultMaxQueryParams ||
		l.MaxJSONDepth != DefaultMaxJSONDepth || l.ConnectionsPerIP != DefaultConnectionsPerIP ||
		l.ConnectionsPerIdentity != DefaultConnectionsPerIdentity || l.InFlightPerIdentity != DefaultInFlightPerIdentity {
		t.Errorf("limit defaults not applied: %+v", l)
	}
	if h := l.FailedHandshakesPerIP; h == nil || h.Rate != "10/s" || h.Burst != 50 {
		t.Errorf("failed handshake default: %+v", h)
	}
	if l.HandshakesPerIP != nil || f.Config.RateLimit != nil || f.Config.RateLimitStore != nil {
		t.Error("an optional limit was switched on by default")
	}
}

const protected = minimal + `    rate_limit: { per: identity, rate: 100/s, burst: 200, by: fingerprint }
    openapi: { spec: api.yaml }
    max_in_flight: 64
    backend_pool: { max_conns: 100, idle_timeout: 90s }
    circuit_breaker: {}
  - name: other
    path: /other/
    backend: http://127.0.0.1:9002
    rate_limit: { per: none }
rate_limit: { per: ip, rate: 6000/m }
rate_limit_store: { redis: "redis://127.0.0.1:6379/0" }
limits:
  handshakes_per_ip: { rate: 200/s, burst: 400 }
  connections_per_ip: 100000
`

func TestProtectionConfig(t *testing.T) {
	f, err := Parse("/etc/g/g.yaml", []byte(protected))
	if err != nil {
		t.Fatal(err)
	}
	c := f.Config
	r := c.Routes[0]
	if r.RateLimit.By != "fingerprint" || r.OpenAPI.Validate != "request" || r.MaxInFlight != 64 ||
		r.BackendPool.IdleTimeout != Duration(90*time.Second) || r.CircuitBreaker.Failures != DefaultBreakerFailures ||
		r.CircuitBreaker.Cooldown != Duration(DefaultBreakerCooldown) {
		t.Errorf("route: %+v %+v %+v", r.RateLimit, r.OpenAPI, r.CircuitBreaker)
	}
	if c.RateLimit.Rate != "6000/m" || c.RateLimitStore.Timeout != Duration(DefaultRateLimitStoreTimeout) || c.RateLimitStore.MaxKeys != DefaultRateLimitMaxKeys {
		t.Errorf("top level: %+v %+v", c.RateLimit, c.RateLimitStore)
	}
	if c.Routes[1].RateLimit.Per != "none" {
		t.Error("per: none lost")
	}
	found := false
	for _, p := range f.Files() {
		found = found || p == "/etc/g/api.yaml"
	}
	if !found {
		t.Errorf("the OpenAPI document is not watched for reload: %v", f.Files())
	}
}

func TestProtectionErrors(t *testing.T) {
	for _, tc := range []struct{ edit, want string }{
		{"rate: 100/s", `g.yaml:8: routes[0].rate_limit.rate: "100/q" is not a rate (use 100/s or 6000/m)`},
		{"per: identity", `g.yaml:8: routes[0].rate_limit.per: unknown value "user" (allowed: identity, ip, route, or none on a route)`},
		{"spec: api.yaml", `g.yaml:9: routes[0].openapi.spec: required: the OpenAPI 3 document (YAML or JSON) to validate requests against`},
		{"redis://127.0.0.1:6379/0", `rate_limit_store.redis: parse redis URL: redis: invalid URL scheme: http (use redis://host:6379/0 or rediss:// for TLS)`},
		{"connections_per_ip: 100000", `limits.connections_per_ip: must be at least 1`},
		{"max_conns: 100", `routes[0].backend_pool.max_conns: must not be negative (0: the default, 1024)`},
	} {
		bad := map[string]string{
			"rate: 100/s": "rate: 100/q", "per: identity": "per: user", "spec: api.yaml": "spec: \"\"",
			"redis://127.0.0.1:6379/0": "http://127.0.0.1:6379/0", "connections_per_ip: 100000": "connections_per_ip: -1",
			"max_conns: 100": "max_conns: -10",
		}[tc.edit]
		_, err := Parse("g.yaml", []byte(strings.Replace(protected, tc.edit, bad, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s -> %s: got %v; want %s", tc.edit, bad, err, tc.want)
		}
		if err != nil && strings.Count(err.Error(), "\n") != 0 {
			t.Errorf("%s: one mistake gave several lines:\n%v", tc.edit, err)
		}
	}
}

// The README's "Limits and validation" example is a valid configuration.
func TestReadmeLimitsExample(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "## Limits and validation")
	j := strings.Index(s[i:], "```yaml\n")
	if i < 0 || j < 0 {
		t.Fatal("README lacks the Limits and validation example")
	}
	body := s[i+j+len("```yaml\n"):]
	body = body[:strings.Index(body, "```")]
	yaml := "server_tls:\n  certificates: [{cert: s.pem, key: k.pem}]\nclient_auth:\n  trusted_cas: [ca.pem]\n" + body
	if _, err := Parse("README.md", []byte(yaml)); err != nil {
		t.Fatalf("the README example is refused:\n%v", err)
	}
}
