package breaker

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Options.
const (
	DefaultFailures = 5
	DefaultCooldown = 10 * time.Second
)

// State is a breaker's state.
type State int32

const (
	// Closed passes every request.
	Closed State = iota
	// Open refuses every request until the cooldown has passed.
	Open
	// HalfOpen lets one probe through; its outcome closes or reopens.
	HalfOpen
)

func (s State) String() string {
	return [...]string{"closed", "open", "half-open"}[s]
}

// Options configure a Breaker.
type Options struct {
	// Name names the backend in logs (the route name).
	Name string
	// Failures is how many consecutive failures open the breaker. If
	// zero, DefaultFailures.
	Failures int
	// Cooldown is how long the breaker stays open before a probe (and how
	// long a probe may take before another is allowed). If zero,
	// DefaultCooldown.
	Cooldown time.Duration
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// Log receives one line per state change. If nil, slog.Default().
	Log *slog.Logger
}

// Breaker tracks one backend. What counts as a failure is the caller's
// call (gatehouse's upstream client reports dial errors, timeouts and
// 502/503/504 answers). It is safe for concurrent use; Allow and Done on
// a closed breaker take no lock.
type Breaker struct {
	o        Options
	state    atomic.Int32
	failures atomic.Int64 // consecutive, while closed

	mu      sync.Mutex
	until   time.Time // open: when a probe may go; half-open: when the probe is overdue
	refused atomic.Int64
}

// New returns a closed Breaker.
func New(o Options) *Breaker {
	if o.Failures <= 0 {
		o.Failures = DefaultFailures
	}
	if o.Cooldown <= 0 {
		o.Cooldown = DefaultCooldown
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Breaker{o: o}
}

// Allow reports whether a request may go to the backend now. Every true
// must be followed by one Done with the outcome.
func (b *Breaker) Allow() bool {
	if State(b.state.Load()) == Closed {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.o.Now()
	switch State(b.state.Load()) {
	case Closed:
		return true
	case Open, HalfOpen:
		// Open past its cooldown, or a probe that never reported: let
		// one (more) probe through.
		if now.Before(b.until) {
			b.refused.Add(1)
			return false
		}
		if State(b.state.Load()) == Open {
			b.o.Log.Info("backend circuit half-open: sending a probe", "route", b.o.Name)
		}
		b.state.Store(int32(HalfOpen))
		b.until = now.Add(b.o.Cooldown)
		return true
	}
	return false
}

// Done reports the outcome of a request Allow let through.
func (b *Breaker) Done(ok bool) {
	if State(b.state.Load()) == Closed {
		if ok {
			if b.failures.Load() != 0 {
				b.failures.Store(0)
			}
			return
		}
		if b.failures.Add(1) < int64(b.o.Failures) {
			return
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch st := State(b.state.Load()); {
	case ok && st != Closed:
		b.state.Store(int32(Closed))
		b.failures.Store(0)
		b.o.Log.Info("backend circuit closed: the backend answers again", "route", b.o.Name)
	case !ok && st == HalfOpen, !ok && st == Closed && b.failures.Load() >= int64(b.o.Failures):
		b.state.Store(int32(Open))
		b.until = b.o.Now().Add(b.o.Cooldown)
		b.o.Log.Warn("backend circuit open: refusing requests with 503 until a probe succeeds",
			"route", b.o.Name, "after", st.String(), "consecutive_failures", b.failures.Load(), "cooldown", b.o.Cooldown)
	}
}

// State returns the current state.
func (b *Breaker) State() State { return State(b.state.Load()) }

// Refused counts the requests refused while open.
func (b *Breaker) Refused() int64 { return b.refused.Load() }
