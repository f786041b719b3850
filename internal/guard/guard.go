package guard

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/breaker"
	"github.com/gatehouse/gatehouse/internal/concurrency"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/ratelimit"
	"github.com/gatehouse/gatehouse/internal/validate"
)

// Options are what Build needs besides the configuration.
type Options struct {
	// Prev is the Guard being replaced on reload: rate limit state,
	// in-flight counts and the Redis connection carry over where the
	// configuration kept them. If nil, everything starts fresh.
	Prev *Guard
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// Log receives state changes (Redis reachability, circuit breakers).
	// If nil, slog.Default().
	Log *slog.Logger
	// Check builds for `config check`: documents are compiled, nothing
	// connects anywhere.
	Check bool
}

// Guard is the protection of one configuration snapshot. It is immutable
// after Build (its limiters are safe for concurrent use); a reload builds
// a new one and swaps it with the snapshot.
type Guard struct {
	routes map[string]*Route
	// Limits are the bounds every request passes (URL, headers, query).
	Limits validate.Limits

	handshakes       *ratelimit.HandshakeLimiter
	handshakeConf    [2]config.HandshakeLimit // what handshakes was built from
	connsPerIP       *concurrency.Keyed
	connsPerIdentity *concurrency.Keyed
	inFlightPerID    *concurrency.Keyed
	redis            *ratelimit.Redis
	redisURL         string
	// stores keeps each rate limit's memory store by name and policy, so
	// a reload that keeps a limit keeps its buckets.
	stores map[string]*ratelimit.Memory
}

// Route is the protection of one route. A nil *Route (a route without
// any) is valid: its methods then pass everything.
type Route struct {
	name string
	// rate is nil when the route has no rate limit.
	rate *ratelimit.Limiter
	per  string // ratelimit.PerIdentity, PerIP or PerRoute
	by   string
	// inFlight bounds the route's requests in flight; nil: no bound.
	inFlight *concurrency.Gate
	// perID bounds every identity's requests in flight (shared by all
	// routes).
	perID *concurrency.Keyed
	// Validator checks requests against the route's OpenAPI document; nil
	// when it has none.
	Validator *validate.Validator
	// Breaker guards the backend; nil when the route has none.
	Breaker *breaker.Breaker
	// Pool holds the backend pool bounds the upstream client applies.
	Pool config.BackendPool
}

// Build provisions the protection of f. Errors are config.Errors, each at
// the line of the field at fault (an OpenAPI document that does not
// compile is reported at routes[i].openapi.spec).
func Build(f *config.File, o Options) (*Guard, error) {
	c := &f.Config
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	var errs config.Errors
	fail := func(field string, err error) {
		errs = append(errs, &config.FieldError{File: f.Path, Line: f.Line(field), Field: field, Err: err})
	}
	l := &c.Limits
	g := &Guard{
		routes: map[string]*Route{},
		stores: map[string]*ratelimit.Memory{},
		Limits: validate.Limits{MaxURLLength: int(l.MaxURLLength), MaxHeaders: l.MaxHeaders,
			MaxQueryParams: l.MaxQueryParams, MaxJSONDepth: l.MaxJSONDepth},
	}
	prev := o.Prev
	maxKeys := 0
	if s := c.RateLimitStore; s != nil {
		maxKeys = s.MaxKeys
	}
	mem := ratelimit.MemoryOptions{MaxKeys: maxKeys, Now: o.Now}

	// Connection bounds and handshake budgets: kept across a reload when
	// unchanged, so the counts of open connections stay true.
	g.connsPerIP = keepKeyed(prev, func(p *Guard) *concurrency.Keyed { return p.connsPerIP }, l.ConnectionsPerIP)
	g.connsPerIdentity = keepKeyed(prev, func(p *Guard) *concurrency.Keyed { return p.connsPerIdentity }, l.ConnectionsPerIdentity)
	g.inFlightPerID = keepKeyed(prev, func(p *Guard) *concurrency.Keyed { return p.inFlightPerID }, l.InFlightPerIdentity)
	var ho ratelimit.HandshakeOptions
	ho.Memory = mem
	if h := l.HandshakesPerIP; h != nil {
		r, err := ratelimit.ParseRate(h.Rate)
		if err != nil {
			fail("limits.handshakes_per_ip.rate", err)
		}
		ho.Rate, ho.Burst = r, h.Burst
	}
	if h := l.FailedHandshakesPerIP; h != nil {
		r, err := ratelimit.ParseRate(h.Rate)
		if err != nil {
			fail("limits.failed_handshakes_per_ip.rate", err)
		}
		ho.FailedRate, ho.FailedBurst = r, h.Burst
	}
	if l.HandshakesPerIP != nil {
		g.handshakeConf[0] = *l.HandshakesPerIP
	}
	if l.FailedHandshakesPerIP != nil {
		g.handshakeConf[1] = *l.FailedHandshakesPerIP
	}
	if prev != nil && prev.handshakes != nil && prev.handshakeConf == g.handshakeConf {
		// Unchanged: a reload must not hand a flooding IP a fresh budget.
		g.handshakes = prev.handshakes
	} else if hl, err := ratelimit.NewHandshakeLimiter(ho); err != nil {
		fail("limits.handshakes_per_ip", err)
	} else {
		g.handshakes = hl
	}

	if s := c.RateLimitStore; s != nil && !o.Check {
		if prev != nil && prev.redis != nil && prev.redisURL == s.Redis {
			g.redis, g.redisURL = prev.redis, prev.redisURL
		} else {
			r, err := ratelimit.NewRedis(ratelimit.RedisOptions{URL: s.Redis, Timeout: time.Duration(s.Timeout),
				Retry: time.Duration(s.Retry), Local: mem, Log: o.Log})
			if err != nil {
				fail("rate_limit_store.redis", err)
			} else {
				g.redis, g.redisURL = r, s.Redis
			}
		}
	}

	for i := range c.Routes {
		rc := &c.Routes[i]
		field := "routes[" + strconv.Itoa(i) + "]"
		r := &Route{name: rc.Name, perID: g.inFlightPerID}
		if rc.BackendPool != nil {
			r.Pool = *rc.BackendPool
		}
		rl, rlField, policyName := rc.RateLimit, field+".rate_limit", rc.Name
		if rl == nil && c.RateLimit != nil {
			// The default applies per route: each route has its own buckets.
			rl, rlField = c.RateLimit, "rate_limit"
		}
		if rl != nil && rl.Per != "none" {
			lim, err := g.limiter(prev, policyName, rl, mem)
			if err != nil {
				fail(rlField, err)
			} else {
				r.rate, r.per, r.by = lim, rl.Per, rl.By
			}
		}
		if rc.MaxInFlight > 0 {
			r.inFlight = concurrency.NewGate(int64(rc.MaxInFlight))
			if prev != nil {
				if pr := prev.routes[rc.Name]; pr != nil && pr.inFlight != nil && pr.inFlight.Max() == int64(rc.MaxInFlight) {
					r.inFlight = pr.inFlight
				}
			}
		}
		if oa := rc.OpenAPI; oa != nil {
			v, err := validate.Load(f.Resolve(oa.Spec), validate.Options{MaxJSONDepth: l.MaxJSONDepth})
			if err != nil {
				fail(field+".openapi.spec", fmt.Errorf("%s: %w", oa.Spec, err))
			}
			r.Validator = v
		}
		if b := rc.CircuitBreaker; b != nil {
			if prev != nil && prev.routes[rc.Name] != nil && prev.routes[rc.Name].Breaker != nil {
				// Keep the state: a reload must not close an open circuit.
				r.Breaker = prev.routes[rc.Name].Breaker
			} else {
				r.Breaker = breaker.New(breaker.Options{Name: rc.Name, Failures: b.Failures,
					Cooldown: time.Duration(b.Cooldown), Now: o.Now, Log: o.Log})
			}
		}
		g.routes[rc.Name] = r
	}
	if len(errs) > 0 {
		if g.redis != nil && (prev == nil || prev.redis != g.redis) {
			g.redis.Close()
		}
		return nil, errs
	}
	return g, nil
}

func keepKeyed(prev *Guard, get func(*Guard) *concurrency.Keyed, max int) *concurrency.Keyed {
	if prev != nil {
		if k := get(prev); k != nil && k.Max() == int64(max) {
			return k
		}
	}
	return concurrency.NewKeyed(int64(max))
}

// limiter builds the limiter called name. In memory, a reload keeps the
// store of a limit with the same name, so its buckets survive.
func (g *Guard) limiter(prev *Guard, name string, rl *config.RateLimit, mem ratelimit.MemoryOptions) (*ratelimit.Limiter, error) {
	rate, err := ratelimit.ParseRate(rl.Rate)
	if err != nil {
		return nil, err
	}
	p := ratelimit.Policy{Name: name, Rate: rate, Burst: rl.Burst}
	if g.redis != nil {
		return ratelimit.New(p, g.redis.Store(name))
	}
	var s *ratelimit.Memory
	if prev != nil {
		s = prev.stores[name]
	}
	if s == nil {
		s = ratelimit.NewMemory(mem)
	}
	g.stores[name] = s
	return ratelimit.New(p, s)
}

// Route returns the protection of the route called name (nil when the
// configuration has no such route).
func (g *Guard) Route(name string) *Route { return g.routes[name] }

// Handshakes is the per-IP handshake limiter for the TLS listener: wrap
// the listener's tls.Config with Handshakes().Config and report failed
// handshakes with Handshakes().Failed.
func (g *Guard) Handshakes() *ratelimit.HandshakeLimiter { return g.handshakes }

// ConnsPerIP bounds open connections per client IP: wrap the TCP
// listener with ConnsPerIP().Listener(ln, ratelimit.IPKey, counter).
func (g *Guard) ConnsPerIP() *concurrency.Keyed { return g.connsPerIP }

// ConnsPerIdentity bounds open connections per identity: after the
// handshake, conn.Hold(ConnsPerIdentity(), keys.Key("")) on the
// *concurrency.Conn the listener returned; false means close it.
func (g *Guard) ConnsPerIdentity() *concurrency.Keyed { return g.connsPerIdentity }

// Status is the rate limit store's state for /readyz: nil when limits are
// kept in memory.
func (g *Guard) Status() *ratelimit.Status {
	if g.redis == nil {
		return nil
	}
	s := g.redis.Status()
	return &s
}

// Retire releases what g holds that next (the Guard replacing it; nil
// at shutdown) did not take over: the Redis connection.
func (g *Guard) Retire(next *Guard) {
	if g.redis != nil && (next == nil || next.redis != g.redis) {
		g.redis.Close()
	}
}
