package telemetry

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	l, err := NewLogger(&buf, "json", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("hidden")
	l.Info("reloaded", "routes", 2)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil || rec["msg"] != "reloaded" || rec["routes"] != 2.0 {
		t.Errorf("json log %q: %v", buf.String(), err)
	}
	buf.Reset()
	l, _ = NewLogger(&buf, "text", slog.LevelInfo)
	l.Info("reloaded", "routes", 2)
	if !strings.Contains(buf.String(), "msg=reloaded routes=2") {
		t.Errorf("text log %q", buf.String())
	}
	if _, err := NewLogger(&buf, "xml", slog.LevelInfo); err == nil {
		t.Error("xml accepted")
	}
}
