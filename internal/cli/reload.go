package cli

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"

	"github.com/gatehouse/gatehouse/internal/certsource"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
)

// reloader re-reads the configuration and every file it names when one of
// them changes or on SIGHUP, and swaps the result into the gateway. A
// configuration that fails to load or provision is refused with its
// reason in the log, and the running one keeps serving.
type reloader struct {
	path    string
	gw      *gateway.Server
	log     *slog.Logger
	watcher *certsource.Watcher

	mu      sync.Mutex // one reload at a time
	current *config.File
}

func newReloader(path string, f *config.File, gw *gateway.Server, log *slog.Logger) *reloader {
	w := certsource.NewWatcher(f.Files())
	w.Log = log
	return &reloader{path: path, gw: gw, log: log, watcher: w, current: f}
}

// start subscribes to SIGHUP now (so that a SIGHUP sent once serve is
// ready is never the default action, which ends the process) and watches
// files and signals until ctx is done.
func (r *reloader) start(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go r.run(ctx, hup)
}

func (r *reloader) run(ctx context.Context, hup chan os.Signal) {
	defer signal.Stop(hup)
	go r.watcher.Run(ctx, func() { r.reload("file change") })
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.reload("SIGHUP")
		}
	}
}

func (r *reloader) reload(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := config.Load(r.path)
	if err == nil {
		err = r.gw.Reload(f)
	} else {
		r.gw.ReloadRefused(err) // Reload records its own refusals
	}
	if err != nil {
		// What was tried becomes the baseline: only a new change (or a
		// SIGHUP) tries again, never the same refused content in a loop.
		// The refused configuration's files are watched too, so that the
		// missing file it names is seen when it appears.
		files := r.current.Files()
		if f != nil {
			files = append(files, f.Files()...)
		}
		r.watcher.SetFiles(files)
		r.log.Error("reload refused; the running configuration keeps serving until the files change again or SIGHUP",
			"trigger", reason, "err", err)
		return
	}
	for _, field := range restartOnly(&r.current.Config, &f.Config) {
		r.log.Warn("changed setting takes effect only after a restart", "field", field)
	}
	r.current = f
	r.watcher.SetFiles(f.Files())
	r.log.Info("configuration reloaded", "trigger", reason, "routes", len(f.Config.Routes))
}

// restartOnly names the changed settings that belong to the listeners and
// the process rather than to the swapped snapshot.
func restartOnly(old, new *config.Config) []string {
	var changed []string
	for _, c := range []struct {
		field string
		same  bool
	}{
		{"listen", old.Listen == new.Listen},
		{"admin.listen", old.Admin == new.Admin},
		{"timeouts.read_header", old.Timeouts.ReadHeader == new.Timeouts.ReadHeader},
		{"timeouts.idle", old.Timeouts.Idle == new.Timeouts.Idle},
		{"limits.max_header_bytes", old.Limits.MaxHeaderBytes == new.Limits.MaxHeaderBytes},
		// The HTTP/2 engine's, set when it starts (gateway.Serve).
		{"limits.max_streams", old.Limits.MaxStreams == new.Limits.MaxStreams},
		{"limits.backend_conns_per_client", old.Limits.BackendConnsPerClient == new.Limits.BackendConnsPerClient},
		{"log", old.Log == new.Log},
		{"expiry_alerts", old.ExpiryAlerts.Webhook == new.ExpiryAlerts.Webhook && old.ExpiryAlerts.StateFile == new.ExpiryAlerts.StateFile &&
			slices.Equal(old.ExpiryAlerts.Thresholds, new.ExpiryAlerts.Thresholds)},
	} {
		if !c.same {
			changed = append(changed, c.field)
		}
	}
	return changed
}
