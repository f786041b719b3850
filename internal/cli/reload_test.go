package cli

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

// A refused reload does not retry itself (issue 9: 29 times in 6 s): the
// refused content becomes the baseline, and only a new change, here the
// missing file appearing, tries again.
func TestRefusedReloadDoesNotLoop(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewRoot(t, "root")
	root.Server(t, "localhost").Write(t, dir, "server")
	root.WriteCert(t, dir, "ca.pem")
	cfg := func(cas string) []byte {
		return []byte(`listen: "127.0.0.1:0"
server_tls:
  certificates: [{cert: server.pem, key: server-key.pem}]
client_auth:
  trusted_cas: [` + cas + `]
routes:
  - name: all
    backend: http://127.0.0.1:9
`)
	}
	path := filepath.Join(dir, "gatehouse.yaml")
	testpki.WriteFile(t, path, cfg("ca.pem"))
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuf{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	gw, err := gateway.New(f, gateway.Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	r := newReloader(path, f, gw, log)
	r.watcher.Debounce, r.watcher.Poll = 20*time.Millisecond, 30*time.Millisecond // poll often: a loop would show
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.watcher.Run(ctx, func() { r.reload("file change") })

	testpki.WriteFile(t, path, cfg("new-ca.pem")) // names a file that does not exist yet
	waitLog(t, logs, "reload refused", 1)
	time.Sleep(500 * time.Millisecond) // about 16 polls
	if n := logs.count("reload refused"); n != 1 {
		t.Fatalf("refused reload tried %d times without any new change", n)
	}
	root.WriteCert(t, dir, "new-ca.pem") // the missing file appears: tried again, and loaded
	waitLog(t, logs, "configuration reloaded", 1)
	if n := logs.count("reload refused"); n != 1 {
		t.Errorf("%d refusals", n)
	}
}

func waitLog(t *testing.T, logs *syncBuf, sub string, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if logs.count(sub) >= n {
			return
		}
	}
	t.Fatalf("log never said %q %d times", sub, n)
}
