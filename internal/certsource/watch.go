package certsource

import (
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher reports when the content of any of a set of files changes. It
// watches the directories that hold them, not the files: an atomic rename
// or a symlink swap (as Kubernetes does for mounted secrets) replaces the
// file a watch would be on. Only events on the files themselves and on the
// symlinks they resolve through count: a log written beside the
// configuration does not. Events are debounced, with the wait bounded from
// the first event, and a change is reported only when the content
// differs, so a touch or a partial write sequence triggers one reload, not
// many. A periodic check backs up the events (network file systems
// deliver none).
type Watcher struct {
	// Debounce is how long to wait after the last event before comparing.
	// If zero, 200ms.
	Debounce time.Duration
	// MaxDelay bounds the wait from the first event of a burst to the
	// comparison, however long events keep coming. If zero, 10 times
	// Debounce.
	MaxDelay time.Duration
	// Poll is the fallback interval for comparing without an event. If
	// zero, 30s.
	Poll time.Duration
	// Log receives watch errors. If nil, slog.Default.
	Log *slog.Logger

	mu     sync.Mutex
	files  []string
	names  map[string]bool // the files and the symlinks they resolve through
	digest [32]byte
	kick   chan struct{}
	// watching, if not nil, is closed once Run has added its watches
	// (tests wait on it instead of sleeping).
	watching chan struct{}
}

// NewWatcher watches files, whose current content is the baseline.
func NewWatcher(files []string) *Watcher {
	w := &Watcher{kick: make(chan struct{}, 1)}
	w.SetFiles(files)
	return w
}

// SetFiles replaces the watched set (after a reload, which may name other
// files) and takes their current content as the new baseline.
func (w *Watcher) SetFiles(files []string) {
	abs := make([]string, 0, len(files))
	for _, f := range files {
		if a, err := filepath.Abs(f); err == nil {
			abs = append(abs, a)
		}
	}
	sort.Strings(abs)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.files = abs
	w.names = relevantNames(abs)
	w.digest = digestFiles(abs)
}

// relevantNames are the paths whose events may change files: each file,
// and every symlink on the way to its content (Kubernetes' "..data").
func relevantNames(files []string) map[string]bool {
	names := make(map[string]bool, len(files))
	for _, f := range files {
		names[f] = true
		p := f
		for range 16 { // symlink hops; a loop ends here
			target, ok := firstSymlink(p)
			if !ok {
				break
			}
			names[target.link] = true
			p = target.next
		}
	}
	return names
}

type hop struct{ link, next string }

// firstSymlink finds the first symlink among p and its ancestors and
// returns it with p rewritten through its target.
func firstSymlink(p string) (hop, bool) {
	for a := p; a != filepath.Dir(a); a = filepath.Dir(a) {
		fi, err := os.Lstat(a)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			continue
		}
		t, err := os.Readlink(a)
		if err != nil {
			return hop{}, false
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(a), t)
		}
		rest, _ := filepath.Rel(a, p)
		return hop{link: a, next: filepath.Join(t, rest)}, true
	}
	return hop{}, false
}

// Check asks the watcher to compare now (for example on SIGHUP).
func (w *Watcher) Check() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run calls changed each time the content of the watched files differs
// from the baseline, until ctx is done. changed runs on Run's goroutine;
// it usually reloads and then calls SetFiles.
func (w *Watcher) Run(ctx context.Context, changed func()) {
	debounce, poll := w.Debounce, w.Poll
	if debounce == 0 {
		debounce = 200 * time.Millisecond
	}
	if poll == 0 {
		poll = 30 * time.Second
	}
	maxDelay := w.MaxDelay
	if maxDelay == 0 {
		maxDelay = 10 * debounce
	}
	log := w.Log
	if log == nil {
		log = slog.Default()
	}
	fw, err := fsnotify.NewWatcher()
	var events <-chan fsnotify.Event
	var errs <-chan error
	if err != nil {
		log.Warn("file watching unavailable; relying on the periodic check", "err", err, "interval", poll)
	} else {
		defer fw.Close()
		events, errs = fw.Events, fw.Errors
	}
	watched := map[string]bool{}
	watchDirs := func() {
		if fw == nil {
			return
		}
		w.mu.Lock()
		files := w.files
		w.mu.Unlock()
		for _, f := range files {
			d := filepath.Dir(f)
			if watched[d] {
				continue
			}
			if err := fw.Add(d); err != nil {
				log.Warn("cannot watch directory; relying on the periodic check", "dir", d, "err", err)
				continue
			}
			watched[d] = true
		}
	}
	watchDirs()
	if w.watching != nil {
		close(w.watching)
	}

	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var burst time.Time // first event not yet compared; zero if none
	compare := func() {
		burst = time.Time{}
		timer.Stop()
		w.mu.Lock()
		files, old := w.files, w.digest
		w.names = relevantNames(files) // a symlink swap moves the targets
		w.mu.Unlock()
		if digestFiles(files) == old {
			return
		}
		changed()
		watchDirs() // the new configuration may name new directories
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			if !w.concerns(ev.Name) {
				continue
			}
			now := time.Now()
			if burst.IsZero() {
				burst = now
			}
			timer.Reset(min(debounce, max(burst.Add(maxDelay).Sub(now), 0)))
		case err := <-errs:
			log.Warn("file watch error", "err", err)
		case <-timer.C:
			compare()
		case <-ticker.C:
			compare()
		case <-w.kick:
			compare()
		}
	}
}

// concerns reports whether an event on name may change a watched file:
// the file itself, or a symlink it resolves through (a Kubernetes secret
// update swaps "..data", not the file's own name).
func (w *Watcher) concerns(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.names[filepath.Clean(name)]
}

// digestFiles hashes the names and contents of files; a missing or
// unreadable file hashes as absent, so its return is a change too.
func digestFiles(files []string) [32]byte {
	h := sha256.New()
	for _, f := range files {
		h.Write([]byte(f))
		h.Write([]byte{0})
		if fh, err := os.Open(f); err == nil {
			io.Copy(h, io.LimitReader(fh, 64<<20))
			fh.Close()
		} else {
			h.Write([]byte("\x00absent\x00"))
		}
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}
