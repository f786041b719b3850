package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Defaults of RedisOptions.
const (
	DefaultRedisTimeout = 50 * time.Millisecond
	DefaultRedisRetry   = time.Second
)

// RedisOptions configure a shared store.
type RedisOptions struct {
	// URL is redis://[user:password@]host:port/db (or rediss:// for TLS).
	URL string
	// Timeout bounds one check, connecting included. If zero,
	// DefaultRedisTimeout. A check that runs out of it is decided locally.
	Timeout time.Duration
	// Retry is how often, while Redis is unreachable, one check tries it
	// again (the others go straight to the local store). If zero,
	// DefaultRedisRetry.
	Retry time.Duration
	// Prefix starts every Redis key. If empty, "gatehouse:rl:".
	Prefix string
	// Local configures the fallback stores. Local.Now also clocks the
	// retries.
	Local MemoryOptions
	// Log receives one line when Redis becomes unreachable and one when
	// it is back. If nil, slog.Default().
	Log *slog.Logger
}

// Redis shares limits between gateways: every check runs one atomic GCRA
// script in Redis, so N gateways enforce one limit together. When Redis
// is unreachable or slower than the timeout, checks are decided by a local
// Memory store (each gateway then enforces the limit on its own) until a
// retry finds Redis again.
type Redis struct {
	client *redis.Client
	o      RedisOptions
	now    func() time.Time

	shared    atomic.Bool
	nextRetry atomic.Int64 // UnixNano; while not shared, when a check may try Redis
	local     atomic.Int64 // checks decided locally
	outages   atomic.Int64

	mu      sync.Mutex // guards the fields below
	since   time.Time
	lastErr string
}

// gcraScript is the GCRA step of Memory.Take, run atomically in Redis on
// Redis's clock (so the gateways' clocks need not agree), in microseconds.
// The key expires when its bucket is full again.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local nxt = tat + interval
local wait = nxt - now
if wait > tolerance then return {0, wait} end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.ceil(wait / 1000) + 1)
return {1, wait}
`)

var quietRedis sync.Once

// CheckRedisURL reports whether u is a Redis URL NewRedis accepts,
// without making a client. The error never quotes u (it may hold a
// password).
func CheckRedisURL(u string) error {
	_, err := parseRedisURL(u)
	return err
}

func parseRedisURL(u string) (*redis.Options, error) {
	opt, err := redis.ParseURL(u)
	if err != nil {
		// url.Error quotes the URL, which may hold a password.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("parse redis URL: %w", err)
	}
	return opt, nil
}

// NewRedis returns a shared store for o.URL. It does not connect: the
// first check does, and falls back locally if Redis is not there.
func NewRedis(o RedisOptions) (*Redis, error) {
	opt, err := parseRedisURL(o.URL)
	if err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultRedisTimeout
	}
	if o.Retry <= 0 {
		o.Retry = DefaultRedisRetry
	}
	if o.Prefix == "" {
		o.Prefix = "gatehouse:rl:"
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Local.Now == nil {
		o.Local.Now = time.Now
	}
	// A check waits at most Timeout: no retries inside the client (the
	// local store is the retry), every socket step under the same bound.
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout = o.Timeout, o.Timeout, o.Timeout, o.Timeout
	opt.ContextTimeoutEnabled = true
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	opt.DisableIdentity = true
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	quietRedis.Do(func() { redis.SetLogger(discardLogger{}) }) // we log state changes ourselves
	r := &Redis{client: redis.NewClient(opt), o: o, now: o.Local.Now}
	r.shared.Store(true)
	r.since = r.now()
	return r, nil
}

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

// Store returns the Store of the limit called name: its keys in Redis are
// prefix + name + ":" + key, and it has its own local fallback.
func (r *Redis) Store(name string) Store {
	return &redisStore{r: r, prefix: r.o.Prefix + name + ":", local: NewMemory(r.o.Local)}
}

// Close closes the connections to Redis.
func (r *Redis) Close() error { return r.client.Close() }

// Status is what /readyz reports about the shared store.
type Status struct {
	// Shared is false while checks are decided locally.
	Shared bool `json:"shared"`
	// Since is when Shared last changed (or the store was made).
	Since time.Time `json:"since"`
	// LocalChecks counts the checks decided locally since the start.
	LocalChecks int64 `json:"local_checks"`
	// Outages counts the times Redis became unreachable.
	Outages int64 `json:"outages"`
	// LastError is the error that started the current or last outage.
	LastError string `json:"last_error,omitempty"`
}

// Status returns the store's current state.
func (r *Redis) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Status{Shared: r.shared.Load(), Since: r.since, LocalChecks: r.local.Load(), Outages: r.outages.Load(), LastError: r.lastErr}
}

type redisStore struct {
	r      *Redis
	prefix string
	local  *Memory
}

func (s *redisStore) Take(key string, interval, tolerance int64) (bool, int64) {
	r := s.r
	if !r.shared.Load() {
		// Only one check per Retry interval tries Redis; the others must
		// not each wait out a timeout.
		now, next := r.now().UnixNano(), r.nextRetry.Load()
		if now < next || !r.nextRetry.CompareAndSwap(next, now+int64(r.o.Retry)) {
			r.local.Add(1)
			return s.local.Take(key, interval, tolerance)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.o.Timeout)
	// Microseconds in Redis (exact in Lua's doubles); at least 1.
	res, err := gcraScript.Run(ctx, r.client, []string{s.prefix + key}, max(interval/1000, 1), max(tolerance/1000, 1)).Int64Slice()
	cancel()
	if err == nil && len(res) != 2 {
		err = errors.New("unexpected reply from the rate limit script")
	}
	if err != nil {
		r.down(err)
		r.local.Add(1)
		return s.local.Take(key, interval, tolerance)
	}
	if !r.shared.Load() {
		r.up()
	}
	return res[0] == 1, res[1] * 1000
}

func (r *Redis) down(err error) {
	r.nextRetry.Store(r.now().Add(r.o.Retry).UnixNano())
	if !r.shared.CompareAndSwap(true, false) {
		return
	}
	r.outages.Add(1)
	r.mu.Lock()
	r.since, r.lastErr = r.now(), err.Error()
	r.mu.Unlock()
	r.o.Log.Warn("rate limit store unreachable: limits are enforced by each gateway alone until it returns",
		"store", "redis", "error", err, "retry", r.o.Retry)
}

func (r *Redis) up() {
	if !r.shared.CompareAndSwap(false, true) {
		return
	}
	r.mu.Lock()
	r.since = r.now()
	r.mu.Unlock()
	r.o.Log.Info("rate limit store reachable again: limits are shared", "store", "redis")
}
