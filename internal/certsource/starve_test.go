package certsource

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeEvery writes to path every 5 ms until ctx is done.
func writeEvery(ctx context.Context, path string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.WriteString("{\"event\":\"request\"}\n")
		}
	}
}

// Issue 9 (reload starvation): an audit log written beside the
// configuration restarted the debounce on every write, so a change to a
// watched file waited for the periodic poll (29.8 s). Only the files named
// count, and the debounce is bounded from the first event.
func TestWatcherNotStarvedByNeighbours(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, []byte("v1"), 0o600)
	w := NewWatcher([]string{ca})
	// MaxDelay out of the way: this test is about which events count.
	w.Debounce, w.MaxDelay, w.Poll = 50*time.Millisecond, time.Hour, time.Hour
	w.watching = make(chan struct{})
	changed := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx, func() { w.SetFiles([]string{ca}); changed <- struct{}{} })
	<-w.watching
	go writeEvery(ctx, filepath.Join(dir, "audit.log"))
	time.Sleep(100 * time.Millisecond)

	start := time.Now()
	os.Remove(ca) // the CA removal of the report
	select {
	case <-changed:
	case <-time.After(3 * time.Second):
		t.Fatal("change to a watched file not seen while a neighbour is written")
	}
	t.Logf("removal seen after %v", time.Since(start))
}

// A watched file written continuously (a slow copy) is compared within
// MaxDelay of its first event, not after the writes stop.
func TestWatcherDebounceBounded(t *testing.T) {
	dir := t.TempDir()
	crl := filepath.Join(dir, "ca.crl")
	os.WriteFile(crl, []byte("v1"), 0o600)
	w := NewWatcher([]string{crl})
	w.Debounce, w.MaxDelay, w.Poll = 50*time.Millisecond, 300*time.Millisecond, time.Hour
	w.watching = make(chan struct{})
	changed := make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx, func() { w.SetFiles([]string{crl}); changed <- struct{}{} })
	<-w.watching
	start := time.Now()
	go writeEvery(ctx, crl)
	select {
	case <-changed:
	case <-time.After(3 * time.Second):
		t.Fatal("a file written continuously was never compared")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("compared after %v, want about MaxDelay (300ms)", d)
	}
}
