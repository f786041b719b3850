package telemetry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func sampleRecord() *AuditRecord {
	return &AuditRecord{
		Time: time.Date(2026, 12, 1, 9, 0, 0, 123456000, time.UTC), Event: "request",
		RequestID: "6f1c2a-1", Remote: "127.0.0.1:50000", Method: "GET", Host: "api.example.com",
		Path: "/orders/1", Route: "orders", Proto: "HTTP/1.1", Status: 200, BytesIn: 0, BytesOut: 1024,
		Duration: 1500 * time.Microsecond, Decision: "allow",
		Subject: `CN=partner-a,O=Partner "Inc"`, Serial: "053E84F8", Issuer: "CN=Issuing CA",
		SPIFFE: "spiffe://example.com/billing", Fingerprint: "3b6a", SANs: []string{"URI:spiffe://example.com/billing"},
	}
}

func TestAuditRecordIsOneJSONObject(t *testing.T) {
	var buf bytes.Buffer
	a := NewAudit(&buf)
	a.Write(sampleRecord())
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSuffix(buf.String(), "\n")
	if strings.Contains(line, "\n") {
		t.Fatalf("one record, several lines: %q", buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, line)
	}
	want := map[string]any{
		"time": "2026-12-01T09:00:00.123456Z", "event": "request", "request_id": "6f1c2a-1",
		"path": "/orders/1", "route": "orders", "status": 200.0, "bytes_out": 1024.0, "duration_ms": 1.5,
		"decision": "allow", "subject": `CN=partner-a,O=Partner "Inc"`, "serial": "053E84F8",
		"spiffe_id": "spiffe://example.com/billing", "level": "info",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
}

func TestAuditRefusalIsWarnAndHasNoEmptyIdentity(t *testing.T) {
	var buf bytes.Buffer
	a := NewAudit(&buf)
	a.Write(&AuditRecord{Time: time.Now(), Event: "request", Status: 400, Decision: "deny", Reason: "bad \x00 path"})
	a.Close()
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("not JSON: %v: %q", err, buf.String())
	}
	if m["level"] != "warn" || m["reason"] != "bad \x00 path" {
		t.Errorf("record = %v", m)
	}
	if _, ok := m["subject"]; ok {
		t.Errorf("subject written for a client without a certificate: %v", m)
	}
	if _, ok := m["path"]; !ok {
		t.Errorf("a refused request's record has no path field: %v", m)
	}
}

// Records wait in the buffer, not in a write(2) each; Flush (run every
// FlushInterval by the flush loop) writes them.
func TestAuditBuffersUntilFlush(t *testing.T) {
	var w countingWriter
	a := NewAudit(&w)
	defer a.Close()
	for range 100 {
		a.Write(sampleRecord())
	}
	if n := w.writes(); n != 0 {
		t.Fatalf("%d writes before a flush; records should be buffered", n)
	}
	a.Flush()
	if n := w.writes(); n != 1 {
		t.Fatalf("%d writes for one flush of 100 records, want 1", n)
	}
	if got := strings.Count(w.String(), "\n"); got != 100 {
		t.Fatalf("%d records written, want 100", got)
	}
}

func TestAuditFlushLoopRunsWithoutWrites(t *testing.T) {
	var w countingWriter
	a := NewAudit(&w)
	defer a.Close()
	a.Write(sampleRecord())
	deadline := time.Now().Add(5 * FlushInterval)
	for w.writes() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the buffered record was not flushed by the flush loop")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAuditFailedWritesAreCountedAndReported(t *testing.T) {
	var reported []error
	a := NewAudit(failingWriter{})
	a.OnError(func(err error) { reported = append(reported, err) })
	a.Write(sampleRecord())
	if err := a.Flush(); err == nil {
		t.Fatal("flush to a failing writer succeeded")
	}
	a.Write(sampleRecord())
	a.Flush()
	if a.Dropped() == 0 {
		t.Fatal("lost records not counted")
	}
	if len(reported) != 1 {
		t.Fatalf("reported %d times, want once per run of failures", len(reported))
	}
	a.Close()
	before := a.Dropped()
	a.Write(sampleRecord())
	if a.Dropped() != before+1 {
		t.Fatal("a record written after Close was not counted as dropped")
	}
}

// logrotate renames the file and sends SIGUSR1: Reopen must flush into
// the renamed file and continue in a new one at the configured path.
func TestAuditReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	a, err := OpenAudit(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Write(sampleRecord())
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Reopen(); err != nil {
		t.Fatal(err)
	}
	a.Write(sampleRecord())
	a.Write(sampleRecord())
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if n := countLines(t, path+".1"); n != 1 {
		t.Errorf("rotated file has %d records, want 1", n)
	}
	if n := countLines(t, path); n != 2 {
		t.Errorf("new file has %d records, want 2", n)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("audit file mode %v, want 0600", st.Mode().Perm())
	}
}

func TestAuditConcurrentWritersKeepLinesWhole(t *testing.T) {
	var buf lockedBuf
	a := NewAudit(&buf)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				a.Write(sampleRecord())
			}
		}()
	}
	wg.Wait()
	a.Close()
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	n := 0
	for sc.Scan() {
		n++
		if !json.Valid(sc.Bytes()) {
			t.Fatalf("line %d is not JSON: %q", n, sc.Text())
		}
	}
	if n != 4000 {
		t.Fatalf("%d lines, want 4000", n)
	}
}

// BenchmarkAuditWrite is the cost of one request's audit record: encode
// and buffer (the flush is amortized over many records).
func BenchmarkAuditWrite(b *testing.B) {
	a := NewAudit(discard{})
	defer a.Close()
	r := sampleRecord()
	b.ReportAllocs()
	for b.Loop() {
		a.Write(r)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

type countingWriter struct {
	mu sync.Mutex
	n  int
	bytes.Buffer
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n++
	return w.Buffer.Write(p)
}

func (w *countingWriter) writes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

func (w *countingWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.Buffer.String()
}

type lockedBuf struct {
	mu sync.Mutex
	bytes.Buffer
}

func (w *lockedBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.Buffer.Write(p)
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}
