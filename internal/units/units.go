package units

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Day and Year are the units "d" and "y" add to Go's duration syntax.
const (
	Day  = 24 * time.Hour
	Year = 365 * Day
)

// ParseDuration parses Go duration syntax ("1h30m", "500ms") plus the units
// d (24h) and y (365d), alone or combined ("1y30d", "90d12h"). Negative
// durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, errors.New("empty duration (use e.g. 30s, 15m, 90d, 2y)")
	}
	if strings.HasPrefix(in, "-") {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	var total time.Duration
	rest := in
	// Consume leading "<int>y" and "<int>d" parts; hand the rest to Go.
	for _, u := range []struct {
		suffix byte
		unit   time.Duration
	}{{'y', Year}, {'d', Day}} {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i > 0 && i < len(rest) && rest[i] == u.suffix {
			n, err := strconv.ParseInt(rest[:i], 10, 64)
			if err != nil || n > int64((1<<63-1)/u.unit) {
				return 0, fmt.Errorf("duration %q is too large", s)
			}
			total += time.Duration(n) * u.unit
			rest = rest[i+1:]
		}
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q (use e.g. 30s, 15m, 12h, 90d, 2y)", s)
		}
		if total+d < total {
			return 0, fmt.Errorf("duration %q is too large", s)
		}
		total += d
	}
	return total, nil
}

// FormatDuration formats d as ParseDuration reads it, as a person writes
// it: in y or d when one divides it exactly, else Go's format without its
// zero units ("15m", "2h", "1h30m", "1m30s", "500ms"; never "15m0s").
func FormatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%Year == 0:
		return strconv.FormatInt(int64(d/Year), 10) + "y"
	case d%Day == 0:
		return strconv.FormatInt(int64(d/Day), 10) + "d"
	}
	s := d.String()
	if d%time.Minute == 0 {
		// "2h0m0s" -> "2h0m" -> "2h"; "15m0s" -> "15m".
		s = strings.TrimSuffix(s, "0s")
		if d%time.Hour == 0 {
			s = strings.TrimSuffix(s, "0m")
		}
	}
	return s
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// ParseSize parses a byte size: a whole number, optionally followed by B,
// KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000).
func ParseSize(s string) (int64, error) {
	in := strings.TrimSpace(s)
	mult := int64(1)
	num := in
	for _, u := range sizeUnits {
		if strings.HasSuffix(in, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(in, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q (use e.g. 65536, 64KiB, 1MiB)", s)
	}
	if n > (1<<63-1)/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}

// FormatSize formats n with the largest binary unit that divides it.
func FormatSize(n int64) string {
	switch {
	case n != 0 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n != 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n != 0 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}
