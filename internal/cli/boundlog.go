package cli

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// boundedHandler passes at most burst records with one message per
// window; the rest are counted and summarized in one record when the
// window ends. `ca serve` logs each refused OCSP request, and a fuzzer or
// a broken client sends hundreds a second: the log stays readable and
// bounded, and still says how many were refused.
type boundedHandler struct {
	slog.Handler
	st *boundState
}

type boundState struct {
	msg    string
	burst  int
	window time.Duration

	mu         sync.Mutex
	start      time.Time
	passed     int
	suppressed int
	flushing   bool
	inner      slog.Handler // the unwrapped handler, for the summary
}

func newBoundedHandler(h slog.Handler, msg string, burst int, window time.Duration) slog.Handler {
	return &boundedHandler{Handler: h, st: &boundState{msg: msg, burst: burst, window: window, inner: h}}
}

func (h *boundedHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message != h.st.msg {
		return h.Handler.Handle(ctx, r)
	}
	st := h.st
	st.mu.Lock()
	now := time.Now()
	if now.Sub(st.start) >= st.window {
		st.start, st.passed = now, 0
	}
	if st.passed < st.burst {
		st.passed++
		st.mu.Unlock()
		return h.Handler.Handle(ctx, r)
	}
	st.suppressed++
	if !st.flushing {
		st.flushing = true
		time.AfterFunc(st.start.Add(st.window).Sub(now), st.flush)
	}
	st.mu.Unlock()
	return nil
}

// flush writes the summary of the window that just ended.
func (st *boundState) flush() {
	st.mu.Lock()
	n := st.suppressed
	st.suppressed, st.flushing = 0, false
	st.mu.Unlock()
	if n == 0 {
		return
	}
	r := slog.NewRecord(time.Now(), slog.LevelWarn, st.msg+" (more, not logged one by one)", 0)
	r.AddAttrs(slog.Int("suppressed", n), slog.Duration("window", st.window), slog.Int("logged_per_window", st.burst))
	st.inner.Handle(context.Background(), r)
}

func (h *boundedHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &boundedHandler{Handler: h.Handler.WithAttrs(as), st: h.st}
}

func (h *boundedHandler) WithGroup(name string) slog.Handler {
	return &boundedHandler{Handler: h.Handler.WithGroup(name), st: h.st}
}
