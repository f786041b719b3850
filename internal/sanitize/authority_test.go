package sanitize

import (
	"errors"
	"strings"
	"testing"
)

func TestAuthority(t *testing.T) {
	ok := []struct{ in, host, port string }{
		{"api.example.com", "api.example.com", ""},
		{"API.Example.COM.", "api.example.com", ""},
		{"api.example.com:8443", "api.example.com", "8443"},
		{"localhost:443", "localhost", "443"},
		{"127.0.0.1:1", "127.0.0.1", "1"},
		{"my_host.internal", "my_host.internal", ""},
		{"[::1]", "::1", ""},
		{"[::1]:8443", "::1", "8443"},
		{"[2001:DB8::1]:65535", "2001:db8::1", "65535"},
		{"a.example:0443", "a.example", "443"},
	}
	for _, tc := range ok {
		h, p, err := Authority(tc.in)
		if err != nil || h != tc.host || p != tc.port {
			t.Errorf("Authority(%q) = %q, %q, %v; want %q, %q", tc.in, h, p, err, tc.host, tc.port)
		}
	}
	bad := []struct {
		in   string
		want error
	}{
		{"", ErrEmptyAuthority},
		{":443", ErrEmptyAuthority},
		{".", ErrAuthorityLabel},
		{"a..example", ErrAuthorityLabel},
		{"0..", ErrAuthorityLabel},
		{"a.example..:443", ErrAuthorityLabel},
		{".a.example", ErrAuthorityLabel},
		// A second host hidden in the authority (issue 9 item 3).
		{"a.example:443,b.example", ErrAuthorityPort},
		{"a.example:,b.example", ErrAuthorityPort},
		{"a.example,b.example", ErrAuthorityChar},
		{"a.example b.example", ErrAuthorityChar},
		{"a.example:443 ", ErrAuthorityPort},
		{"a.example\t", ErrAuthorityChar},
		{"a.example:", ErrAuthorityPort},
		{"a.example:0", ErrAuthorityPort},
		{"a.example:65536", ErrAuthorityPort},
		{"a.example:99999999999", ErrAuthorityPort},
		{"a.example:+443", ErrAuthorityPort},
		{"a.example:443:1", ErrAuthorityPort},
		{"user@a.example", ErrAuthorityChar},
		{"a%2eexample", ErrAuthorityChar},
		{"a.example/", ErrAuthorityChar},
		{"a.example\x00.b", ErrAuthorityChar},
		{"a.exämple", ErrAuthorityChar},
		{"[::1", ErrAuthorityIPv6},
		{"[::1]x", ErrAuthorityChar},
		{"[::1]:", ErrAuthorityPort},
		{"[fe80::1%25eth0]", ErrAuthorityIPv6},
		{"[127.0.0.1]", ErrAuthorityIPv6},
		{"[::1],b.example", ErrAuthorityChar},
		{"::1", ErrAuthorityPort},
	}
	for _, tc := range bad {
		_, _, err := Authority(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("Authority(%q) error = %v, want %v", tc.in, err, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), "authority") {
			t.Errorf("error %q does not say what was parsed", err)
		}
	}
}

func TestSplitTarget(t *testing.T) {
	cases := []struct {
		in   string
		want Target
		err  error
	}{
		{in: "/a/b?x=1", want: Target{Path: "/a/b", Query: "x=1"}},
		{in: "/", want: Target{Path: "/"}},
		{in: "*", want: Target{Asterisk: true}},
		{in: "http://a.example/x?y", want: Target{Authority: "a.example", Path: "/x", Query: "y"}},
		{in: "HTTPS://a.example:8443", want: Target{Authority: "a.example:8443", Path: "/"}},
		{in: "https://a.example?q", want: Target{Authority: "a.example", Path: "/", Query: "q"}},
		// The raw path is kept byte for byte, so Path sees %2e and %2f
		// even beside a byte net/url would re-escape (issue 9 item 7).
		{in: "/a|b/%2e%2e/admin", want: Target{Path: "/a|b/%2e%2e/admin"}},
		{in: "/x#frag", err: ErrFragment},
		{in: "", err: ErrTarget},
		{in: "a/b", err: ErrTarget},
		{in: "ftp://a.example/", err: ErrTarget},
		{in: "http://user@a.example/", err: ErrTarget},
		{in: "http:///x", err: ErrTarget},
	}
	for _, tc := range cases {
		got, err := SplitTarget(tc.in)
		if !errors.Is(err, tc.err) || err == nil && got != tc.want {
			t.Errorf("SplitTarget(%q) = %+v, %v; want %+v, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// The rule of Path must hold whatever else the raw path holds: encoded
// dots and slashes are refused, never decoded.
func TestSplitTargetThenPathRefusesEncodedDotsBesideReescapedBytes(t *testing.T) {
	for _, raw := range []string{
		"/a|/%2e%2e/admin", "/a{/%2E%2E/admin", "/\"/%2e./admin", "/`/.%2e/admin",
		"/\xff/%2e%2e/admin", "/a|b%2fadmin", "/{x}%2Fadmin", "/a|/%5cadmin",
	} {
		tg, err := SplitTarget(raw)
		if err != nil {
			t.Fatalf("SplitTarget(%q): %v", raw, err)
		}
		if p, err := Path(tg.Path); err == nil {
			t.Errorf("Path(%q) = %q, accepted; want refused", raw, p)
		}
	}
}

func FuzzAuthority(f *testing.F) {
	for _, s := range []string{"a.example", "a.example:443", "[::1]:8443", "a.example:443,b.example", "a.example:,b", "A.B.", "x:0", "[::ffff:1.2.3.4]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		host, port, err := Authority(raw)
		if err != nil {
			return
		}
		if host == "" || strings.ContainsAny(host, ",@ /\\%\x00\t\r\n") {
			t.Fatalf("Authority(%q) accepted host %q", raw, host)
		}
		if host != strings.ToLower(host) || strings.HasSuffix(host, ".") {
			t.Fatalf("host %q is not normalized", host)
		}
		again := host
		if strings.Contains(host, ":") {
			again = "[" + host + "]"
		}
		if port != "" {
			again += ":" + port
		}
		h2, p2, err := Authority(again)
		if err != nil || h2 != host || p2 != port {
			t.Fatalf("not a fixed point: %q -> %q %q -> %q %q %v", raw, host, port, h2, p2, err)
		}
	})
}
