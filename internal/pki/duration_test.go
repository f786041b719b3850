package pki

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90d": 90 * Day, "2y": 2 * Year, "30m": 30 * time.Minute, "1y30d": Year + 30*Day,
		"1d12h": 36 * time.Hour, "1h30m": 90 * time.Minute, "0": 0, " 7d ": 7 * Day,
	} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "1.5d", "-1h", "90days", "1w", "y2", "99999999999999y"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want error", in, got)
		}
	}
	for _, d := range []time.Duration{2 * Year, 90 * Day, 36 * time.Hour, 30 * time.Minute} {
		if got, err := ParseDuration(FormatDuration(d)); err != nil || got != d {
			t.Errorf("round trip %v: %v %v", d, got, err)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90d", "2y", "1y30d12h", "30m", "-1h", "1.5h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil && d < 0 {
			t.Errorf("ParseDuration(%q) = %v, negative", s, d)
		}
	})
}
