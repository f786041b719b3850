package cli

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// logrotate renames the audit file and sends SIGUSR1; the gateway must
// then write into a new file at the configured path.
func TestSIGUSR1ReopensTheAuditLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	audit, err := telemetry.OpenAudit(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer audit.Close()
	stop := reopenOnSIGUSR1(audit, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer stop()
	audit.Write(&telemetry.AuditRecord{Event: "request", Route: "before"})
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("SIGUSR1 did not reopen the audit log")
		}
		time.Sleep(10 * time.Millisecond)
	}
	audit.Write(&telemetry.AuditRecord{Event: "request", Route: "after"})
	audit.Close()
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(old), `"route":"before"`) || strings.Contains(string(old), "after") {
		t.Errorf("rotated file: %q", old)
	}
	if !strings.Contains(string(cur), `"route":"after"`) {
		t.Errorf("new file: %q", cur)
	}
}
