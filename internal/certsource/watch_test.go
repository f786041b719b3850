package certsource

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// waitChange waits for a change report, failing after a generous bound
// (the watcher reports within its debounce; the bound only stops a hang).
func waitChange(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no change reported", what)
	}
}

func noChange(t *testing.T, ch <-chan struct{}, w *Watcher, what string) {
	t.Helper()
	w.Check() // compare now; a false report would arrive before the sentinel
	select {
	case <-ch:
		t.Fatalf("%s: change reported", what)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestWatcher(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	os.WriteFile(cert, []byte("v1"), 0o600)
	w := NewWatcher([]string{cert})
	w.Debounce, w.Poll = 20*time.Millisecond, time.Hour
	w.watching = make(chan struct{})
	changed := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx, func() {
		w.SetFiles([]string{cert}) // the new baseline, before the test moves on
		changed <- struct{}{}
	})
	<-w.watching

	// Atomic replace by rename, as cert-manager and editors do.
	tmp := filepath.Join(dir, ".cert.tmp")
	os.WriteFile(tmp, []byte("v2"), 0o600)
	os.Rename(tmp, cert)
	waitChange(t, changed, "rename")

	// Same content rewritten: no reload.
	os.WriteFile(cert, []byte("v2"), 0o600)
	noChange(t, changed, w, "same content")

	// In-place write.
	os.WriteFile(cert, []byte("v3"), 0o600)
	waitChange(t, changed, "write")
}

// A Kubernetes-style secret mount: the file is a symlink through "..data",
// and an update swaps "..data" to a new directory.
func TestWatcherSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	for _, v := range []string{"v1", "v2"} {
		os.Mkdir(filepath.Join(dir, v), 0o700)
		os.WriteFile(filepath.Join(dir, v, "tls.crt"), []byte("cert "+v), 0o600)
	}
	os.Symlink("v1", filepath.Join(dir, "..data"))
	cert := filepath.Join(dir, "tls.crt")
	os.Symlink("..data/tls.crt", cert)
	w := NewWatcher([]string{cert})
	w.Debounce, w.Poll = 20*time.Millisecond, time.Hour
	w.watching = make(chan struct{})
	changed := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx, func() { w.SetFiles([]string{cert}); changed <- struct{}{} })
	<-w.watching

	os.Symlink("v2", filepath.Join(dir, "..data_tmp"))
	os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data"))
	waitChange(t, changed, "symlink swap")
}

// Without any event (a file system that sends none), the periodic check
// finds the change.
func TestWatcherPoll(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "ca.pem")
	os.WriteFile(f, []byte("a"), 0o600)
	w := NewWatcher([]string{f})
	w.Debounce, w.Poll = time.Hour, 20*time.Millisecond // events never fire in time; polling does
	changed := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx, func() { w.SetFiles([]string{f}); changed <- struct{}{} })
	os.WriteFile(f, []byte("b"), 0o600)
	waitChange(t, changed, "poll")
	os.Remove(f)
	waitChange(t, changed, "removal")
}
