package telemetry

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenAudit(t *testing.T) {
	var stdout, stderr bytes.Buffer
	for dest, buf := range map[string]*bytes.Buffer{"stdout": &stdout, "stderr": &stderr} {
		a, err := OpenAudit(dest, &stdout, &stderr)
		if err != nil {
			t.Fatal(err)
		}
		a.Write(&AuditRecord{Event: "request", Route: "api"})
		a.Close()
		var rec map[string]any
		if err := json.Unmarshal(buf.Bytes(), &rec); err != nil || rec["route"] != "api" {
			t.Errorf("%s: %q is not one JSON object: %v", dest, buf.String(), err)
		}
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	a, err := OpenAudit(path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Write(&AuditRecord{Event: "request"})
	a.Close()
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() == 0 {
		t.Fatalf("audit file: %v, %v", st, err)
	}
	if _, err := OpenAudit(filepath.Join(t.TempDir(), "no", "dir", "a.log"), nil, nil); err == nil {
		t.Error("an unwritable path was accepted")
	}
	if _, err := ParseLevel("loud"); err == nil {
		t.Error("ParseLevel accepted loud")
	}
}
