package ratelimit

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testredis"
)

// testRedis is a real redis-server on loopback, started once for the
// package by TestMain. The outage test kills and restarts it on the same
// port.
var testRedis *testredis.Server

func TestMain(m *testing.M) {
	var err error
	testRedis, err = testredis.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ratelimit:", err)
		os.Exit(1)
	}
	code := m.Run()
	testRedis.Close()
	os.Exit(code)
}

func newShared(t *testing.T, prefix string, logs *bytes.Buffer) *Redis {
	t.Helper()
	var log *slog.Logger
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, nil))
	} else {
		log = slog.New(slog.DiscardHandler)
	}
	// A generous timeout: on a loaded test machine a check can take longer
	// than the 50ms default, and a timeout (rightly) decides locally,
	// which is not what the sharing tests measure.
	r, err := NewRedis(RedisOptions{URL: testRedis.URL(), Prefix: prefix, Timeout: 2 * time.Second, Retry: 100 * time.Millisecond, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// hammer sends checks through ls from two goroutines each for d and
// returns how many passed.
func hammer(ls []*Limiter, key string, d time.Duration) int64 {
	var passed atomic.Int64
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for _, l := range ls {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(end) {
					if l.Allow(key).Allowed {
						passed.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	return passed.Load()
}

// Two gateways (two clients with their own connections) share one limit.
func TestRedisSharedLimit(t *testing.T) {
	prefix := "test:" + t.Name() + ":"
	p := Policy{Name: "orders", Rate: Rate{200, time.Second}, Burst: 20}
	var ls []*Limiter
	var stores []*Redis
	for range 2 {
		r := newShared(t, prefix, nil)
		l, err := New(p, r.Store(p.Name))
		if err != nil {
			t.Fatal(err)
		}
		ls, stores = append(ls, l), append(stores, r)
	}
	const d = 2 * time.Second
	passed := hammer(ls, "spiffe:spiffe://example.com/a", d)
	want := float64(p.Burst) + 200*d.Seconds()
	t.Logf("two gateways passed %d in %v at 200/s burst 20 (want %.0f)", passed, d, want)
	// The shared limit must hold (at most 3% over: Redis's clock decides).
	// Fewer can pass if a loaded machine stalls both loops for longer than
	// the burst lasts (100ms), so the lower bound is looser.
	if f := float64(passed); f > want*1.03 || f < want*0.6 {
		t.Fatalf("combined %d passed; want %.0f (at most 3%% over); status %+v / %+v", passed, want, stores[0].Status(), stores[1].Status())
	}
	for _, r := range stores {
		if st := r.Status(); !st.Shared || st.LocalChecks != 0 {
			t.Fatalf("status %+v: want shared with no local checks", st)
		}
	}
	// The refusals carry what the headers need.
	d0 := ls[0].Allow("spiffe:spiffe://example.com/a")
	for d0.Allowed {
		d0 = ls[0].Allow("spiffe:spiffe://example.com/a")
	}
	if d0.RetryAfter <= 0 || d0.RetryAfter > 10*time.Millisecond || d0.Header() != `"orders";r=0;t=1` {
		t.Fatalf("refusal: retry after %v, RateLimit %s", d0.RetryAfter, d0.Header())
	}
}

// Redis killed mid-test: checks keep flowing under the local limit, the
// outage is logged once and visible in Status; Redis back: shared again.
func TestRedisOutageFallsBackAndRejoins(t *testing.T) {
	prefix := "test:" + t.Name() + ":"
	var logs bytes.Buffer
	a, b := newShared(t, prefix, &logs), newShared(t, prefix, nil)
	p := Policy{Name: "orders", Rate: Rate{100, time.Second}, Burst: 10}
	la, _ := New(p, a.Store(p.Name))
	lb, _ := New(p, b.Store(p.Name))
	if !la.Allow("k").Allowed {
		t.Fatal("first check refused")
	}

	testRedis.Kill()
	t.Cleanup(func() { testRedis.Restart() })
	start := time.Now()
	passed := hammer([]*Limiter{la}, "k2", time.Second)
	st := a.Status()
	t.Logf("Redis down: %d passed in 1s locally; status %+v", passed, st)
	if st.Shared || st.Outages != 1 || st.LocalChecks == 0 || st.LastError == "" {
		t.Fatalf("status during the outage: %+v", st)
	}
	// Local limit: burst + 1s at 100/s, give or take the retries that
	// went to a dead Redis.
	if passed < 80 || passed > 115 {
		t.Fatalf("%d passed locally in 1s; want about 110", passed)
	}
	if el := time.Since(start); el > 1500*time.Millisecond {
		t.Fatalf("checks stalled during the outage: %v", el)
	}
	if n := strings.Count(logs.String(), "unreachable"); n != 1 {
		t.Fatalf("outage logged %d times; want once:\n%s", n, logs.String())
	}

	if err := testRedis.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !a.Status().Shared || !b.Status().Shared {
		if time.Now().After(deadline) {
			t.Fatalf("not shared 5s after Redis came back: %+v / %+v", a.Status(), b.Status())
		}
		la.Allow("probe")
		lb.Allow("probe")
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "reachable again") {
		t.Fatalf("rejoin not logged:\n%s", logs.String())
	}
	// Shared again: what a spends, b cannot.
	n := 0
	for la.Allow("k3").Allowed {
		n++
	}
	if lb.Allow("k3").Allowed {
		t.Fatalf("after rejoining, b passed a request a had exhausted (a passed %d)", n)
	}
}

func TestRedisBadURL(t *testing.T) {
	for _, u := range []string{"ftp://x", "redis://user:s3cret@[::1/0", ""} {
		_, err := NewRedis(RedisOptions{URL: u})
		if CheckRedisURL(u) == nil {
			t.Errorf("CheckRedisURL(%q) accepted", u)
		}
		if err == nil {
			t.Errorf("NewRedis(%q) accepted", u)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error echoes the password: %v", err)
		}
	}
}
