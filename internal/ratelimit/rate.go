package ratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Rate is N events per Per.
type Rate struct {
	N   int64
	Per time.Duration
}

// ParseRate parses "100/s", "6000/m", "50000/h" or "1000000/d".
func ParseRate(s string) (Rate, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, fmt.Errorf("%q is not a rate (use 100/s or 6000/m)", s)
	}
	per := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[unit]
	v, err := strconv.ParseInt(n, 10, 64)
	if per == 0 || err != nil {
		return Rate{}, fmt.Errorf("%q is not a rate (use 100/s or 6000/m)", s)
	}
	if v < 1 || v > 1_000_000_000 {
		return Rate{}, fmt.Errorf("%q: the count must be between 1 and 1000000000", s)
	}
	return Rate{N: v, Per: per}, nil
}

// String formats r as ParseRate reads it.
func (r Rate) String() string {
	u := map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h", 24 * time.Hour: "d"}[r.Per]
	return strconv.FormatInt(r.N, 10) + "/" + u
}

// Interval is the time one event's worth of budget takes to refill.
func (r Rate) Interval() time.Duration { return r.Per / time.Duration(r.N) }

// Policy is one named rate limit.
type Policy struct {
	// Name identifies the limit in RateLimit headers and audit records:
	// the route name, or "default" for the top-level limit.
	Name string
	// Rate is the sustained rate.
	Rate Rate
	// Burst is how many requests may pass at once from a full bucket. If
	// zero, Rate.N (one period's worth) is used.
	Burst int64
}

func (p Policy) check() error {
	switch {
	case p.Name == "" || strings.ContainsAny(p.Name, "\"\\") || strings.IndexFunc(p.Name, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0:
		return fmt.Errorf("rate limit name %q must be printable ASCII without quotes", p.Name)
	case p.Rate.N < 1 || p.Rate.Per <= 0:
		return errors.New("rate limit needs a rate such as 100/s")
	case p.Rate.Interval() <= 0:
		return fmt.Errorf("rate %s is too high", p.Rate)
	case p.Burst < 0:
		return errors.New("burst must not be negative")
	}
	return nil
}
