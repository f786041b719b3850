package pki

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Day and Year are the units ParseDuration adds to Go's: a year is 365
// days, as certificate validity is usually counted.
const (
	Day  = 24 * time.Hour
	Year = 365 * Day
)

// ParseDuration parses a duration in Go syntax ("90m", "1h30m") extended
// with "d" (days) and "y" (365 days), which may be combined: "1y30d",
// "90d", "2y", "30m". Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, fmt.Errorf("parse duration %q: empty", s)
	}
	var total time.Duration
	rest := in
	// Consume leading "<int>y" and "<int>d" parts; the rest is Go syntax.
	for _, u := range []struct {
		suffix byte
		unit   time.Duration
	}{{'y', Year}, {'d', Day}} {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i >= len(rest) || rest[i] != u.suffix {
			continue
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil || n > int64(1<<62)/int64(u.unit) {
			return 0, fmt.Errorf("parse duration %q: too large", s)
		}
		total += time.Duration(n) * u.unit
		rest = rest[i+1:]
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("parse duration %q: use Go syntax plus d and y, like 90d, 2y, 30m", s)
		}
		if d < 0 {
			return 0, fmt.Errorf("parse duration %q: negative", s)
		}
		total += d
	}
	return total, nil
}

// FormatDuration formats d the way ParseDuration reads it, using y and d
// for whole days: 2y, 90d, 36h, 30m0s.
func FormatDuration(d time.Duration) string {
	switch {
	case d > 0 && d%Year == 0:
		return fmt.Sprintf("%dy", d/Year)
	case d > 0 && d%Day == 0:
		return fmt.Sprintf("%dd", d/Day)
	}
	return d.String()
}
