package ratelimit

import (
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newLimiter(t testing.TB, rate string, burst int64, c *clock) *Limiter {
	t.Helper()
	r, err := ParseRate(rate)
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(Policy{Name: "orders", Rate: r, Burst: burst}, NewMemory(MemoryOptions{Now: c.Now}))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]Rate{
		"100/s": {100, time.Second}, "6000/m": {6000, time.Minute}, "5/h": {5, time.Hour}, "1/d": {1, 24 * time.Hour},
	} {
		got, err := ParseRate(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParseRate(%q) = %v, %v (String %q); want %v", in, got, err, got.String(), want)
		}
	}
	for _, in := range []string{"", "100", "100/q", "0/s", "-1/s", "x/s", "100/ s", "1e3/s", "100/sec"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) accepted", in)
		}
	}
}

func TestBurstThenRate(t *testing.T) {
	c := newClock()
	l := newLimiter(t, "10/s", 5, c)
	for i := range 5 {
		d := l.Allow("a")
		if !d.Allowed || d.Remaining != int64(4-i) {
			t.Fatalf("request %d: allowed %v remaining %d; want true, %d", i, d.Allowed, d.Remaining, 4-i)
		}
	}
	d := l.Allow("a")
	if d.Allowed {
		t.Fatal("6th request within the burst passed")
	}
	if d.RetryAfter != 100*time.Millisecond || d.RetryAfterSeconds() != 1 || d.Remaining != 0 {
		t.Fatalf("refusal: retry after %v (%ds), remaining %d; want 100ms (1s), 0", d.RetryAfter, d.RetryAfterSeconds(), d.Remaining)
	}
	if d.Limit != "orders" || d.Key != "a" {
		t.Fatalf("refusal names %q/%q; want orders/a", d.Limit, d.Key)
	}
	if got := d.PolicyHeader(); got != `"orders";q=10;w=1` {
		t.Fatalf("RateLimit-Policy = %s", got)
	}
	if got := d.Header(); got != `"orders";r=0;t=1` {
		t.Fatalf("RateLimit = %s", got)
	}
	// Refill: one token per 100ms.
	c.Add(99 * time.Millisecond)
	if l.Allow("a").Allowed {
		t.Fatal("passed before a token refilled")
	}
	c.Add(time.Millisecond)
	if !l.Allow("a").Allowed {
		t.Fatal("refused after a token refilled")
	}
	if l.Allow("a").Allowed {
		t.Fatal("two requests passed on one refilled token")
	}
	// A long pause refills to the burst, never beyond it.
	c.Add(time.Hour)
	n := 0
	for l.Allow("a").Allowed {
		n++
	}
	if n != 5 {
		t.Fatalf("after an hour %d requests passed; want the burst, 5", n)
	}
}

func TestSustainedRate(t *testing.T) {
	c := newClock()
	l := newLimiter(t, "6000/m", 1, c) // one per 10ms
	passed := 0
	for range 10_000 { // 10s in 1ms steps
		if l.Allow("k").Allowed {
			passed++
		}
		c.Add(time.Millisecond)
	}
	if passed != 1000 {
		t.Fatalf("%d passed in 10s at 6000/m; want 1000", passed)
	}
}

func TestKeysAreIsolated(t *testing.T) {
	c := newClock()
	l := newLimiter(t, "1/s", 1, c)
	if !l.Allow("a").Allowed || l.Allow("a").Allowed {
		t.Fatal("key a: want one pass then a refusal")
	}
	if !l.Allow("b").Allowed {
		t.Fatal("key b was refused because of key a")
	}
}

func TestDefaultBurstIsOnePeriod(t *testing.T) {
	c := newClock()
	l := newLimiter(t, "3/s", 0, c)
	n := 0
	for l.Allow("a").Allowed {
		n++
	}
	if n != 3 || l.Policy().Burst != 3 {
		t.Fatalf("burst 0 let %d pass (policy burst %d); want 3", n, l.Policy().Burst)
	}
}

func TestAllowedHeader(t *testing.T) {
	c := newClock()
	l := newLimiter(t, "100/m", 10, c)
	d := l.Allow("a")
	// One token spent: full again in 0.6s, which rounds up to 1.
	if got := d.Header(); got != `"orders";r=9;t=1` {
		t.Fatalf("RateLimit = %s", got)
	}
	if got := d.PolicyHeader(); got != `"orders";q=100;w=60` {
		t.Fatalf("RateLimit-Policy = %s", got)
	}
}

func TestPolicyRefused(t *testing.T) {
	m := NewMemory(MemoryOptions{})
	for _, p := range []Policy{
		{Name: "", Rate: Rate{1, time.Second}},
		{Name: `a"b`, Rate: Rate{1, time.Second}},
		{Name: "a", Rate: Rate{0, time.Second}},
		{Name: "a", Rate: Rate{1, time.Second}, Burst: -1},
		{Name: "a", Rate: Rate{1, 24 * time.Hour}, Burst: 1 << 40},
	} {
		if _, err := New(p, m); err == nil {
			t.Errorf("New(%+v) accepted", p)
		}
	}
}

// A million distinct keys must not grow the store past its bound, whether
// the keys go idle (a scan) or stay active (a flood within the window).
func TestMemoryBounded(t *testing.T) {
	for _, tc := range []struct {
		name string
		step time.Duration // clock advance per key
	}{{"idle keys", 10 * time.Millisecond}, {"active keys", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			store := NewMemory(MemoryOptions{MaxKeys: 50_000, Now: c.Now})
			l, err := New(Policy{Name: "ip", Rate: Rate{100, time.Second}, Burst: 1}, store)
			if err != nil {
				t.Fatal(err)
			}
			heap := func() uint64 {
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				return ms.HeapAlloc
			}
			before := heap()
			var at200k uint64
			for i := range 1_000_000 {
				l.Allow("10.0." + strconv.Itoa(i))
				c.Add(tc.step)
				if i == 200_000 {
					at200k = heap()
				}
			}
			after := heap()
			if n := store.Len(); n > 50_000 {
				t.Fatalf("store holds %d keys; bound 50000", n)
			}
			grown := int64(after) - int64(before)
			t.Logf("heap: before %d KiB, after 200k keys %d KiB, after 1M keys %d KiB (%d keys held, %d active evicted)",
				before>>10, at200k>>10, after>>10, store.Len(), store.Evicted())
			// 50k keys of ~12 bytes plus map overhead fit in a few MiB.
			if grown > 16<<20 {
				t.Fatalf("heap grew by %d MiB for a 50k-key store", grown>>20)
			}
			if after > at200k+4<<20 {
				t.Fatalf("heap kept growing: %d KiB at 200k keys, %d KiB at 1M", at200k>>10, after>>10)
			}
			if tc.step == 0 && store.Evicted() == 0 {
				t.Fatal("active keys were never evicted")
			}
		})
	}
}

func TestMemoryConcurrent(t *testing.T) {
	c := newClock()
	l := newLimiter(t, "1/s", 100, c)
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed := 0
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if l.Allow("shared").Allowed {
					mu.Lock()
					passed++
					mu.Unlock()
				}
				l.Allow(fmt.Sprint("own", g))
			}
		}()
	}
	wg.Wait()
	if passed != 100 {
		t.Fatalf("%d passed concurrently from a burst of 100", passed)
	}
}

// BenchmarkAllow measures an allowing check against the in-memory store
// with a real clock: the cost a rate limit adds to a request.
func BenchmarkAllow(b *testing.B) {
	r := Rate{N: 1_000_000_000, Per: time.Second}
	l, err := New(Policy{Name: "bench", Rate: r, Burst: 1 << 20}, NewMemory(MemoryOptions{}))
	if err != nil {
		b.Fatal(err)
	}
	key := "spiffe:spiffe://example.com/billing/worker"
	b.ReportAllocs()
	for b.Loop() {
		if !l.Allow(key).Allowed {
			b.Fatal("refused")
		}
	}
}

// BenchmarkAllowParallel is BenchmarkAllow from every core, over 1024 keys.
func BenchmarkAllowParallel(b *testing.B) {
	r := Rate{N: 1_000_000_000, Per: time.Second}
	l, _ := New(Policy{Name: "bench", Rate: r, Burst: 1 << 20}, NewMemory(MemoryOptions{}))
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "serial:CN=ca\x00" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(keys[i&1023])
			i++
		}
	})
}

func TestKeysOf(t *testing.T) {
	root := testpki.NewRoot(t, "Keys CA")
	svid := identity.New(root.Leaf(t, testpki.LeafOptions{CN: "w", URIs: []string{"https://example.com/x", "spiffe://example.com/billing"}}).Chain)
	plain := identity.New(root.Client(t, "partner-a").Chain)
	ks, kp := KeysOf(svid), KeysOf(plain)
	if ks.Key("") != "spiffe:spiffe://example.com/billing" || ks.Key(BySPIFFEID) != ks.Key("") {
		t.Errorf("SVID key %q", ks.Key(""))
	}
	if want := "serial:" + plain.Serial() + ";issuer:CN=Keys CA,O=gatehouse test"; kp.Key("") != want {
		t.Errorf("plain key %q; want %q", kp.Key(""), want)
	}
	if kp.Key(BySubject) != "subject:CN=partner-a;issuer:CN=Keys CA,O=gatehouse test" {
		t.Errorf("subject key %q", kp.Key(BySubject))
	}
	if kp.Key(ByFingerprint) != "sha256:"+plain.Fingerprint() {
		t.Errorf("fingerprint key %q", kp.Key(ByFingerprint))
	}
	// A renewed certificate of the same subject shares the subject key
	// but not the serial key.
	again := KeysOf(identity.New(root.Client(t, "partner-a").Chain))
	if again.Key(BySubject) != kp.Key(BySubject) || again.Key("") == kp.Key("") {
		t.Error("renewal: subject keys must match, serial keys must not")
	}
	if KeysOf(nil) != (IdentityKeys{}) {
		t.Error("nil identity has keys")
	}
}

// FuzzParseRate: any input either fails or round-trips through String.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"100/s", "6000/m", "1/d", "0/s", "100/q", "", "/", "9999999999/s", " 5/h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if r.N < 1 || r.Interval() <= 0 {
			t.Fatalf("ParseRate(%q) = %+v", s, r)
		}
		if again, err := ParseRate(r.String()); err != nil || again != r {
			t.Fatalf("round trip of %q: %q -> %+v, %v", s, r.String(), again, err)
		}
	})
}
