package units

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"30s", 30 * time.Second},
		{"15m", 15 * time.Minute},
		{"90d", 90 * Day},
		{"2y", 2 * Year},
		{"1y30d", Year + 30*Day},
		{"1d12h", Day + 12*time.Hour},
		{"1h30m", 90 * time.Minute},
		{"0", 0},
	} {
		got, err := ParseDuration(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "-1h", "abc", "5x", "d", "1dd", "99999999999999y", "1.5d"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want error", in, got)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", 2 * Year: "2y", 90 * Day: "90d", 90 * time.Minute: "1h30m",
		15 * time.Minute: "15m", 2 * time.Hour: "2h", 25 * time.Hour: "25h", time.Hour + 30*time.Second: "1h0m30s",
		90 * time.Second: "1m30s", 500 * time.Millisecond: "500ms", 10 * time.Second: "10s", -15 * time.Minute: "-15m",
		Day + 30*time.Minute: "24h30m", time.Minute + 500*time.Millisecond: "1m0.5s"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"65536": 65536, "64KiB": 64 << 10, "1MiB": 1 << 20, "2GiB": 2 << 30, "10KB": 10000, "5B": 5, " 1 MiB ": 1 << 20} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1TiB", "abc", "1.5MiB", "9999999999999GiB"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want error", in, got)
		}
	}
	if got := FormatSize(1 << 20); got != "1MiB" {
		t.Errorf("FormatSize = %q", got)
	}
}

// FuzzParseDuration: never a panic or a negative result; formatting a
// parsed value and parsing it again gives the same value.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90d", "2y", "1y30d", "1h30m", "-5m", "9999999999y", "1d1d", "0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, negative", s, d)
		}
		again, err := ParseDuration(FormatDuration(d))
		if err != nil || again != d {
			t.Fatalf("round trip of %q: %v -> %q -> %v, %v", s, d, FormatDuration(d), again, err)
		}
	})
}
