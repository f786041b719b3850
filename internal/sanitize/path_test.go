package sanitize

import (
	"errors"
	"net/url"
	"path"
	"strings"
	"testing"
)

func TestPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		// The examples the gateway relies on.
		{"/public/../admin", "/admin", nil},
		{"/public/%2e%2e/admin", "", ErrEncodedDot},
		{"/public/%2E%2E%2Fadmin", "", ErrEncodedDot},
		{"//admin", "/admin", nil},
		{"/admin;x=1", "", ErrSemicolon},
		{"/public/..;/admin", "", ErrSemicolon},
		{"/ADMIN", "/ADMIN", nil},
		{"/a/./b//c/", "/a/b/c/", nil},

		// Already normal: returned as is.
		{"/", "/", nil},
		{"/orders/123", "/orders/123", nil},
		{"/orders/", "/orders/", nil},
		{"/a-b_c~d.e/x!$&'()*+,=:@", "/a-b_c~d.e/x!$&'()*+,=:@", nil},
		{"/files/a%20b", "/files/a%20b", nil},
		{"/%C3%A9t%C3%A9", "/%C3%A9t%C3%A9", nil},

		// Slashes and dot segments.
		{"///", "/", nil},
		{"/a//", "/a/", nil},
		{"/.", "/", nil},
		{"/a/.", "/a/", nil},
		{"/a/..", "/", nil},
		{"/a/b/..", "/a/", nil},
		{"/a/b/../", "/a/", nil},
		{"/a/b/../../c", "/c", nil},
		{"/a//../b", "/b", nil}, // slashes collapse first, as path.Clean and nginx do
		{"/a/.../b", "/a/.../b", nil},
		{"/a/..b/.c", "/a/..b/.c", nil},
		{"/..", "", ErrAboveRoot},
		{"/a/../..", "", ErrAboveRoot},
		{"/../a", "", ErrAboveRoot},
		{"//..//a", "", ErrAboveRoot},

		// Escapes: unreserved decoded, others upper-cased, dangerous refused.
		{"/%61dmin", "/admin", nil},
		{"/%41%7e%2d%5F", "/A~-_", nil},
		{"/a%3fb", "/a%3Fb", nil},
		{"/a%3Ab", "/a%3Ab", nil},
		{"/a%2fb", "", ErrEncodedSlash},
		{"/a%5cb", "", ErrEncodedBackslash},
		{"/a%5Cb", "", ErrEncodedBackslash},
		{"/.%2e/a", "", ErrEncodedDot},
		{"/a%3bb", "", ErrSemicolon},
		{"/a%252fb", "", ErrEncodedPercent},
		{"/a%00", "", ErrControl},
		{"/a%0d%0a", "", ErrControl},
		{"/a%7F", "", ErrControl},
		{"/a%", "", ErrBadEscape},
		{"/a%4", "", ErrBadEscape},
		{"/a%g1", "", ErrBadEscape},
		{"/a%%41", "", ErrBadEscape},

		// Raw bytes.
		{"/a\\b", "", ErrBackslash},
		{"/a\x00b", "", ErrControl},
		{"/a\tb", "", ErrControl},
		{"/a\x7fb", "", ErrControl},
		{"/a?b", "", ErrInvalidChar},
		{"/a#b", "", ErrInvalidChar},
		{"/a b", "/a%20b", nil},
		{"/a[1]", "/a%5B1%5D", nil},
		{"/é", "/%C3%A9", nil},
		{"/a\"<>^`{|}", "/a%22%3C%3E%5E%60%7B%7C%7D", nil},

		// Not a path.
		{"", "", ErrNotAbsolute},
		{"*", "", ErrNotAbsolute},
		{"admin", "", ErrNotAbsolute},
		{"http://x/a", "", ErrNotAbsolute},
	} {
		got, err := Path(tc.in)
		if tc.err != nil {
			var pe *PathError
			if !errors.Is(err, tc.err) || !errors.As(err, &pe) {
				t.Errorf("Path(%q) = %q, %v; want error %v", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Path(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestPathErrorMessage(t *testing.T) {
	_, err := Path("/public/%2e%2e/admin")
	if want := `normalize path: encoded "." (%2E) at byte 8`; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
	_, err = Path("/a/../..")
	if want := `normalize path: ".." above the root at byte 6`; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
}

func TestPathNormalDoesNotAllocate(t *testing.T) {
	for _, p := range []string{"/", "/v1/orders/12345/items", "/files/a%20b/"} {
		if n := testing.AllocsPerRun(100, func() { _, _ = Path(p) }); n != 0 {
			t.Errorf("Path(%q) allocated %v times, want 0", p, n)
		}
	}
}

func TestPathLong(t *testing.T) {
	// More segments and bytes than the stack buffers hold.
	in := strings.Repeat("/seg", 200) + strings.Repeat("/..", 199) + "/x/"
	got, err := Path(in)
	if err != nil || got != "/seg/x/" {
		t.Fatalf("Path(long) = %q, %v", got, err)
	}
}

// FuzzPath checks the properties the gateway relies on for every input
// Path accepts.
func FuzzPath(f *testing.F) {
	for _, s := range []string{
		"/", "/public/../admin", "/public/%2e%2e/admin", "/public/%2E%2E%2Fadmin", "//admin",
		"/admin;x=1", "/public/..;/admin", "/ADMIN", "/a/./b//c/", "/%61dmin", "/a%3fb",
		"/a/b/..", "/a b/é", "/a%252f", "/..", "/a%", "/x/%7e/./../y//", "/a\\b", "/%C3%A9/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Path(in)
		if err != nil {
			var pe *PathError
			if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset > len(in) || out != "" {
				t.Fatalf("Path(%q) = %q, %v: bad error", in, out, err)
			}
			return
		}
		if !strings.HasPrefix(out, "/") || strings.Contains(out, "//") {
			t.Fatalf("Path(%q) = %q: not a single-slash absolute path", in, out)
		}
		for _, seg := range strings.Split(out, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("Path(%q) = %q: dot segment", in, out)
			}
		}
		lower := strings.ToLower(out)
		for _, bad := range []string{";", "\\", "?", "#", "%2f", "%2e", "%5c", "%25", "%3b", "%00"} {
			if strings.Contains(lower, bad) {
				t.Fatalf("Path(%q) = %q: contains %q", in, out, bad)
			}
		}
		for i := 0; i < len(out); i++ {
			if c := out[i]; c <= ' ' || c >= 0x7f {
				t.Fatalf("Path(%q) = %q: raw byte %#x", in, out, c)
			}
		}
		again, err := Path(out)
		if err != nil || again != out {
			t.Fatalf("Path(Path(%q)) = %q, %v; want fixed point %q", in, again, err, out)
		}
		if strings.HasSuffix(in, "/") != strings.HasSuffix(out, "/") && out != "/" &&
			!strings.HasSuffix(in, "/.") && !strings.HasSuffix(in, "/..") {
			t.Fatalf("Path(%q) = %q: trailing slash changed", in, out)
		}
		// What a backend sees after decoding once has our segments: no new
		// separators, no dot segments, nothing left to decode.
		dec, err := url.PathUnescape(out)
		if err != nil {
			t.Fatalf("Path(%q) = %q: backend cannot decode: %v", in, out, err)
		}
		if strings.Count(dec, "/") != strings.Count(out, "/") || strings.ContainsAny(dec, "%\\;") {
			t.Fatalf("Path(%q) = %q decodes to %q: structure changed", in, out, dec)
		}
		if c := path.Clean(dec); c != strings.TrimSuffix(dec, "/") && c != dec {
			t.Fatalf("Path(%q) = %q decodes to %q, which path.Clean changes to %q", in, out, dec, c)
		}
	})
}

// BenchmarkPath measures a typical API path that is already normal (the
// common case, no allocation) and one that needs rewriting.
func BenchmarkPath(b *testing.B) {
	for _, tc := range []struct{ name, in string }{
		{"normal", "/v1/orders/12345/items"},
		{"rewrite", "/v1//orders/./12345/items/../%69tems"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Path(tc.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
