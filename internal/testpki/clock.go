package testpki

import (
	"sync"
	"time"
)

// Clock is a settable clock for the Now fields of the code under test, so
// that expiry, refresh and cache lifetimes are tested without sleeping.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock set to the current time, truncated to the second.
func NewClock() *Clock { return &Clock{t: time.Now().Truncate(time.Second)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
