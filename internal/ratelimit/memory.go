package ratelimit

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxKeys bounds a Memory store when MemoryOptions.MaxKeys is zero.
const DefaultMaxKeys = 100_000

const shardCount = 64 // a power of two; spreads lock contention

// MemoryOptions configure a Memory store.
type MemoryOptions struct {
	// MaxKeys bounds how many keys the store holds. If zero,
	// DefaultMaxKeys.
	MaxKeys int
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// Memory is an in-process Store with bounded memory. A key whose bucket
// has refilled completely carries no information (a missing key is a full
// bucket), so such idle keys are dropped first when a shard is full; only
// when every key in a shard is active is the one closest to full evicted,
// which at worst hands that one key a fresh bucket early.
type Memory struct {
	shards   [shardCount]shard
	seed     maphash.Seed
	perShard int
	now      func() time.Time
	base     time.Time
	evicted  atomic.Int64
}

type shard struct {
	mu sync.Mutex
	// tat is each key's theoretical arrival time, in ns since base.
	tat map[string]int64
	// sinceSweep counts insertions since the last sweep, so that a shard
	// full of active keys is not swept on every insertion.
	sinceSweep int
	_          [40]byte // keep shards on separate cache lines
}

// NewMemory returns an empty Memory store.
func NewMemory(o MemoryOptions) *Memory {
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Memory{seed: maphash.MakeSeed(), now: o.Now}
	m.base = o.Now()
	m.perShard = max(1, o.MaxKeys/shardCount)
	for i := range m.shards {
		m.shards[i].tat = make(map[string]int64)
	}
	return m
}

// Take implements Store.
func (m *Memory) Take(key string, interval, tolerance int64) (bool, int64) {
	now := int64(m.now().Sub(m.base))
	s := &m.shards[maphash.String(m.seed, key)&(shardCount-1)]
	s.mu.Lock()
	tat, ok := s.tat[key]
	if !ok || tat < now {
		tat = now
	}
	next := tat + interval
	wait := next - now
	if wait > tolerance {
		s.mu.Unlock()
		return false, wait
	}
	if !ok {
		m.makeRoom(s, now)
	}
	s.tat[key] = next
	s.mu.Unlock()
	return true, wait
}

// Peek reports whether Take would allow key now, without spending.
func (m *Memory) Peek(key string, interval, tolerance int64) bool {
	now := int64(m.now().Sub(m.base))
	s := &m.shards[maphash.String(m.seed, key)&(shardCount-1)]
	s.mu.Lock()
	tat, ok := s.tat[key]
	s.mu.Unlock()
	if !ok || tat < now {
		tat = now
	}
	return tat+interval-now <= tolerance
}

// makeRoom makes space for one more key in s (locked).
func (m *Memory) makeRoom(s *shard, now int64) {
	s.sinceSweep++
	if len(s.tat) < m.perShard {
		return
	}
	if s.sinceSweep >= m.perShard/4 {
		s.sinceSweep = 0
		// Copy the live keys into a fresh map rather than deleting in
		// place: a Go map never shrinks, and this keeps its size honest.
		live := make(map[string]int64, len(s.tat))
		for k, t := range s.tat {
			if t > now {
				live[k] = t
			}
		}
		s.tat = live
	}
	if len(s.tat) < m.perShard {
		return
	}
	// Every key is active: evict the one nearest to full among a few
	// (map iteration order is random, so this is a random sample).
	victim, least, n := "", int64(0), 0
	for k, t := range s.tat {
		if n == 0 || t < least {
			victim, least = k, t
		}
		if n++; n == 8 {
			break
		}
	}
	delete(s.tat, victim)
	m.evicted.Add(1)
}

// Len returns how many keys the store holds.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.tat)
		s.mu.Unlock()
	}
	return n
}

// Evicted returns how many active keys were evicted to stay within
// MaxKeys (idle keys dropped are not counted: they lose nothing).
func (m *Memory) Evicted() int64 { return m.evicted.Load() }
