package telemetry

import (
	"fmt"
	"io"
	"log/slog"
	"os"
)

// ParseLevel maps debug, info, warn and error to slog levels.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log level %q: %w", s, err)
	}
	return l, nil
}

// OpenAudit returns the audit logger for dest: "stdout", "stderr", "off"
// or a file path (appended to, created 0600). The closer must be called
// at shutdown; it is a no-op for the standard streams.
func OpenAudit(dest string, stdout, stderr io.Writer) (*slog.Logger, io.Closer, error) {
	var w io.Writer
	closer := io.Closer(nopCloser{})
	switch dest {
	case "stdout":
		w = stdout
	case "stderr":
		w = stderr
	case "off":
		return slog.New(slog.DiscardHandler), closer, nil
	default:
		f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("open audit log: %w", err)
		}
		w, closer = f, f
	}
	return slog.New(slog.NewJSONHandler(w, nil)), closer, nil
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
