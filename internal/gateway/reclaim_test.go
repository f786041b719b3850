package gateway

import (
	"context"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"
)

// TestReclaimerFiresOnceWhenABurstEnds drives the decision tick by tick:
// never under load, once when the load stops, not again while quiet, and
// never when there is little to give back.
func TestReclaimerFiresOnceWhenABurstEnds(t *testing.T) {
	var r reclaimer
	var allocs uint64 = 1 << 30
	tick := func(delta, reclaimable, live uint64) bool {
		allocs += delta
		return r.step(memSample{allocs: allocs, live: live, reclaimable: reclaimable})
	}
	if tick(0, 100<<20, 10<<20) {
		t.Fatal("reclaimed on the first sample")
	}
	if tick(0, 100<<20, 10<<20) {
		t.Fatal("reclaimed while quiet without any burst before")
	}
	for i := range 20 {
		if tick(50<<20, 100<<20, 10<<20) {
			t.Fatalf("reclaimed under load (tick %d)", i)
		}
	}
	if tick(512<<10, 100<<20, 10<<20) {
		t.Fatal("reclaimed on a tick that still allocated more than quietAlloc")
	}
	if !tick(10<<10, 100<<20, 10<<20) {
		t.Fatal("did not reclaim when the burst ended")
	}
	for range 5 {
		if tick(10<<10, 100<<20, 10<<20) {
			t.Fatal("reclaimed again while still quiet")
		}
	}
	// A second burst, then quiet, with little to give back: nothing.
	tick(50<<20, 0, 0)
	if tick(0, 4<<20, 10<<20) {
		t.Fatal("reclaimed 4 MiB: below reclaimMin")
	}
	// A big live heap needs a quarter of it reclaimable.
	tick(50<<20, 0, 0)
	if tick(0, 20<<20, 200<<20) {
		t.Fatal("reclaimed 20 MiB of a 200 MiB heap")
	}
	tick(50<<20, 0, 0)
	if !tick(0, 60<<20, 200<<20) {
		t.Fatal("did not reclaim 60 MiB of a 200 MiB heap")
	}
}

var reclaimSink [][]byte

// TestReclaimerGivesMemoryBack runs the reclaimer on the process's real
// metrics: a burst of garbage, then quiet, and the heap's garbage is
// collected and its pages returned to the OS.
func TestReclaimerGivesMemoryBack(t *testing.T) {
	s := newMemSamples()
	// No gateway's own reclaimer may start meanwhile and take the
	// garbage first.
	for !reclaiming.CompareAndSwap(false, true) {
		time.Sleep(10 * time.Millisecond)
	}
	defer reclaiming.Store(false)
	reclaimMemory()
	var freed atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		reclaimWhenQuiet(ctx, 50*time.Millisecond, func() memSample { return readMemSample(s) }, func() {
			freed.Add(1)
			reclaimMemory()
		})
	}()
	// The burst: 64 MiB allocated over about 300 ms, 32 MiB of it
	// still reachable when it ends.
	for i := range 64 {
		reclaimSink = append(reclaimSink, make([]byte, 1<<20))
		if i%2 == 0 {
			reclaimSink[i/2] = nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	before := readMemSample(s).reclaimable
	releasedBefore := heapReleased()
	reclaimSink = nil // now all of it is garbage
	deadline := time.Now().Add(10 * time.Second)
	for freed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if freed.Load() != 1 {
		t.Fatalf("reclaimer ran %d times after one burst, want 1", freed.Load())
	}
	after := readMemSample(s)
	if after.reclaimable > before/2 {
		t.Fatalf("after reclaiming: %d bytes reclaimable, %d before; want under half", after.reclaimable, before)
	}
	if released := heapReleased() - releasedBefore; released < 16<<20 {
		t.Fatalf("%d bytes returned to the OS after a 64 MiB burst; want at least 16 MiB", released)
	}
}

// heapReleased is the heap memory returned to the OS, per runtime/metrics.
func heapReleased() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
