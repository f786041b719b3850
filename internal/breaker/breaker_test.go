package breaker

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestBreakerLifecycle(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	var logs bytes.Buffer
	b := New(Options{Name: "orders", Failures: 3, Cooldown: 10 * time.Second, Now: c.Now, Log: slog.New(slog.NewTextHandler(&logs, nil))})

	// Failures that are not consecutive do not open it.
	for range 5 {
		b.Allow()
		b.Done(false)
		b.Allow()
		b.Done(true)
	}
	if b.State() != Closed {
		t.Fatal("opened on non-consecutive failures")
	}
	for range 3 {
		if !b.Allow() {
			t.Fatal("refused while closed")
		}
		b.Done(false)
	}
	if b.State() != Open || b.Allow() {
		t.Fatalf("state %v after 3 failures; want open and refusing", b.State())
	}
	c.Add(9 * time.Second)
	if b.Allow() {
		t.Fatal("passed before the cooldown")
	}
	c.Add(time.Second)
	if !b.Allow() {
		t.Fatal("no probe after the cooldown")
	}
	if b.State() != HalfOpen || b.Allow() {
		t.Fatal("half-open let a second request through beside the probe")
	}
	b.Done(false) // probe failed: open again for a full cooldown
	if b.State() != Open {
		t.Fatalf("state %v after a failed probe; want open", b.State())
	}
	c.Add(10 * time.Second)
	if !b.Allow() {
		t.Fatal("no second probe")
	}
	b.Done(true)
	if b.State() != Closed || !b.Allow() {
		t.Fatalf("state %v after a good probe; want closed", b.State())
	}
	b.Done(true)
	if b.Refused() != 3 {
		t.Fatalf("refused %d; want 3", b.Refused())
	}
	out := logs.String()
	for _, want := range []string{"circuit open", "half-open", "circuit closed", "route=orders"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "circuit open"); n != 2 {
		t.Errorf("opened logged %d times; want 2", n)
	}
}

// A probe that never reports does not wedge the breaker.
func TestLostProbe(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	b := New(Options{Failures: 1, Cooldown: time.Second, Now: c.Now, Log: slog.New(slog.DiscardHandler)})
	b.Allow()
	b.Done(false)
	c.Add(time.Second)
	if !b.Allow() {
		t.Fatal("no probe")
	}
	c.Add(time.Second)
	if !b.Allow() {
		t.Fatal("a lost probe wedged the breaker half-open")
	}
}

func TestConcurrentUse(t *testing.T) {
	b := New(Options{Failures: 10, Cooldown: time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				if b.Allow() {
					b.Done((i+g)%3 != 0)
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkClosed(b *testing.B) {
	br := New(Options{})
	b.ReportAllocs()
	for b.Loop() {
		if br.Allow() {
			br.Done(true)
		}
	}
}
