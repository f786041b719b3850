package telemetry

import (
	"fmt"
	"io"
	"log/slog"
)

// NewLogger returns the operational log writing to w: format "text"
// (logfmt, the default when empty) or "json" (one object per line), at
// level.
func NewLogger(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: use text or json", format)
}
