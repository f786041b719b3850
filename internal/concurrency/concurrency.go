package concurrency

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// BusyBody is the short JSON body of a 503 answer to a request refused by
// an in-flight bound; send it with Retry-After: 1. Refusing at once keeps
// the cost of an overload bounded: a queue would hold memory and sockets
// for clients that are already over their share.
const BusyBody = `{"error":"too many requests in flight; retry shortly"}` + "\n"

// Gate bounds one count (a route's in-flight requests). The zero Gate
// counts without a bound.
type Gate struct {
	n   atomic.Int64
	max int64
}

// NewGate returns a Gate admitting at most max holders; max <= 0 means no
// bound (Acquire always succeeds but still counts).
func NewGate(max int64) *Gate { return &Gate{max: max} }

// Acquire takes a slot, reporting false (and taking nothing) when all max
// are held. Every true must be paired with one Release.
func (g *Gate) Acquire() bool {
	if n := g.n.Add(1); g.max > 0 && n > g.max {
		g.n.Add(-1)
		return false
	}
	return true
}

// Release returns a slot taken by Acquire.
func (g *Gate) Release() { g.n.Add(-1) }

// InFlight returns how many slots are held.
func (g *Gate) InFlight() int64 { return g.n.Load() }

const shardCount = 32

// Keyed bounds a count per key (in-flight requests per identity, open
// connections per client IP). It holds only keys with a slot taken, so its
// memory is bounded by what is in flight, not by how many clients exist.
type Keyed struct {
	max    int64
	seed   maphash.Seed
	shards [shardCount]keyedShard
}

type keyedShard struct {
	mu sync.Mutex
	n  map[string]int64
	_  [48]byte // separate cache lines
}

// NewKeyed returns a Keyed admitting at most max holders per key; max
// must be at least 1.
func NewKeyed(max int64) *Keyed {
	k := &Keyed{max: max, seed: maphash.MakeSeed()}
	for i := range k.shards {
		k.shards[i].n = make(map[string]int64)
	}
	return k
}

func (k *Keyed) shard(key string) *keyedShard {
	return &k.shards[maphash.String(k.seed, key)&(shardCount-1)]
}

// Acquire takes one of key's slots, reporting false when key holds max.
// Every true must be paired with one Release(key).
func (k *Keyed) Acquire(key string) bool {
	s := k.shard(key)
	s.mu.Lock()
	n := s.n[key]
	if n >= k.max {
		s.mu.Unlock()
		return false
	}
	s.n[key] = n + 1
	s.mu.Unlock()
	return true
}

// Release returns one of key's slots.
func (k *Keyed) Release(key string) {
	s := k.shard(key)
	s.mu.Lock()
	if n := s.n[key]; n > 1 {
		s.n[key] = n - 1
	} else {
		delete(s.n, key)
	}
	s.mu.Unlock()
}

// Count returns how many slots key holds.
func (k *Keyed) Count(key string) int64 {
	s := k.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[key]
}

// Len returns how many keys hold a slot.
func (k *Keyed) Len() int {
	n := 0
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		n += len(s.n)
		s.mu.Unlock()
	}
	return n
}

// Max returns the gate's bound (0: none).
func (g *Gate) Max() int64 { return g.max }

// Max returns the bound per key.
func (k *Keyed) Max() int64 { return k.max }
