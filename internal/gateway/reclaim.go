package gateway

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// Memory after a burst. Go's collector lets the heap grow to about twice
// what is live before it collects (GOGC=100), and an idle process runs no
// collection until the runtime forces one, two minutes later. A gateway
// that has just accepted a burst of connections which then stay open and
// quiet (a fleet reconnecting after a restart, or the bench's 2000 idle
// mTLS connections) would hold the handshakes' garbage, and the read
// buffers fasthttp pooled for them, for those two minutes. The reclaimer
// watches the allocation rate; when a busy period ends (the process
// allocates next to nothing for one tick) and there is enough to give
// back, it collects twice (a sync.Pool drops what it holds over two
// collections) and returns the freed pages to the operating system.
//
// Under load it does nothing: the allocation rate is the activity signal,
// so no counter is added to the request path, and a collection is forced
// at most once per busy period, when the process has nothing else to do.
// Lowering GOGC instead would shrink the heap at every moment, at a cost
// of about a tenth more CPU per handshake (docs/performance.md).
const (
	reclaimTick = 250 * time.Millisecond
	// A tick allocating at least busyAlloc is activity; one allocating
	// less than quietAlloc, after activity, is the end of it.
	busyAlloc  = 1 << 20
	quietAlloc = 256 << 10
	// reclaimMin is the least worth a forced collection: the garbage and
	// free pages held, at least this and a quarter of the live heap.
	reclaimMin = 8 << 20
)

// memSample is what the reclaimer reads from runtime/metrics.
type memSample struct {
	allocs      uint64 // bytes allocated since the process started
	live        uint64 // heap live after the last collection
	reclaimable uint64 // unreachable objects not yet collected + free pages not returned
}

var reclaimMetrics = []string{
	"/gc/heap/allocs:bytes",
	"/gc/heap/live:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/free:bytes",
}

// newMemSamples returns the runtime/metrics samples readMemSample reads.
func newMemSamples() []metrics.Sample {
	s := make([]metrics.Sample, len(reclaimMetrics))
	for i, name := range reclaimMetrics {
		s[i].Name = name
	}
	return s
}

func readMemSample(s []metrics.Sample) memSample {
	metrics.Read(s)
	u := func(i int) uint64 {
		if s[i].Value.Kind() == metrics.KindUint64 {
			return s[i].Value.Uint64()
		}
		return 0
	}
	allocs, live, objects, free := u(0), u(1), u(2), u(3)
	var garbage uint64
	if objects > live {
		garbage = objects - live
	}
	return memSample{allocs: allocs, live: live, reclaimable: garbage + free}
}

// reclaimer decides, tick by tick, when to give memory back.
type reclaimer struct {
	last uint64 // allocs at the previous tick
	busy bool   // a busy tick was seen since the last reclaim
}

// step takes one tick's sample and reports whether to reclaim now.
func (r *reclaimer) step(m memSample) bool {
	delta := m.allocs - r.last
	first := r.last == 0
	r.last = m.allocs
	if first {
		return false
	}
	switch {
	case delta >= busyAlloc:
		r.busy = true
		return false
	case delta >= quietAlloc || !r.busy:
		return false
	}
	r.busy = false
	return m.reclaimable >= max(reclaimMin, m.live/4)
}

// reclaimWhenQuiet runs the reclaimer until ctx is done; free is called
// to give memory back (reclaimMemory outside tests).
func reclaimWhenQuiet(ctx context.Context, tick time.Duration, read func() memSample, free func()) {
	t := time.NewTicker(tick)
	defer t.Stop()
	var r reclaimer
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if r.step(read()) {
			free()
			// What the collections allocated is not activity.
			r.last = read().allocs
		}
	}
}

// reclaimMemory collects twice and returns free pages to the OS.
func reclaimMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

// reclaiming is set while a reclaimer runs: one per process, however
// many listeners serve.
var reclaiming atomic.Bool

// startReclaimer runs the reclaimer on the process's own metrics until
// ctx is done, unless one runs already.
func startReclaimer(ctx context.Context) {
	if !reclaiming.CompareAndSwap(false, true) {
		return
	}
	s := newMemSamples()
	go func() {
		defer reclaiming.Store(false)
		reclaimWhenQuiet(ctx, reclaimTick, func() memSample { return readMemSample(s) }, reclaimMemory)
	}()
}
