package authz

import (
	"net/url"
	"testing"
)

func TestSPIFFEID(t *testing.T) {
	u := func(s string) []*url.URL { return []*url.URL{mustURL(t, s)} }
	rule := func(p string) Rule { return Rule{SPIFFEID: p} }
	runMatchCases(t, []matchCase{
		{"exact", rule("spiffe://example.com/billing/api"), certOpts{uris: u("spiffe://example.com/billing/api")}, true},
		{"exact other path", rule("spiffe://example.com/billing/api"), certOpts{uris: u("spiffe://example.com/billing/web")}, false},
		{"trust domain only", rule("spiffe://example.com"), certOpts{uris: u("spiffe://example.com")}, true},
		{"trust domain only vs path", rule("spiffe://example.com"), certOpts{uris: u("spiffe://example.com/a")}, false},
		{"star one segment", rule("spiffe://example.com/billing/*"), certOpts{uris: u("spiffe://example.com/billing/api")}, true},
		{"star needs a segment", rule("spiffe://example.com/billing/*"), certOpts{uris: u("spiffe://example.com/billing")}, false},
		{"star is one segment only", rule("spiffe://example.com/billing/*"), certOpts{uris: u("spiffe://example.com/billing/api/v2")}, false},
		{"star in the middle", rule("spiffe://example.com/ns/*/sa/web"), certOpts{uris: u("spiffe://example.com/ns/prod/sa/web")}, true},
		{"star in the middle, depth", rule("spiffe://example.com/ns/*/sa/web"), certOpts{uris: u("spiffe://example.com/ns/a/b/sa/web")}, false},
		{"double star one", rule("spiffe://example.com/billing/**"), certOpts{uris: u("spiffe://example.com/billing/api")}, true},
		{"double star many", rule("spiffe://example.com/billing/**"), certOpts{uris: u("spiffe://example.com/billing/api/v2/x")}, true},
		{"double star needs one", rule("spiffe://example.com/billing/**"), certOpts{uris: u("spiffe://example.com/billing")}, false},
		{"double star prefix is segment-wise", rule("spiffe://example.com/billing/**"), certOpts{uris: u("spiffe://example.com/billing-evil/x")}, false},
		{"trust domain case folded", rule("spiffe://Example.COM/a"), certOpts{uris: u("spiffe://EXAMPLE.com/a")}, true},
		{"path case sensitive", rule("spiffe://example.com/Billing"), certOpts{uris: u("spiffe://example.com/billing")}, false},
		{"other trust domain", rule("spiffe://example.com/a"), certOpts{uris: u("spiffe://example.org/a")}, false},
		{"trust domain suffix", rule("spiffe://example.com/a"), certOpts{uris: u("spiffe://evil-example.com/a")}, false},
		{"no URI SAN", rule("spiffe://example.com/a"), certOpts{dns: []string{"example.com"}}, false},
		{"two spiffe URI SANs", rule("spiffe://example.com/*"),
			certOpts{uris: []*url.URL{mustURL(t, "spiffe://example.com/a"), mustURL(t, "spiffe://example.com/b")}}, false},
		{"spiffe plus https URI SAN", rule("spiffe://example.com/a"),
			certOpts{uris: []*url.URL{mustURL(t, "spiffe://example.com/a"), mustURL(t, "https://example.com/")}}, false},
		{"https scheme", rule("spiffe://example.com/a"), certOpts{uris: u("https://example.com/a")}, false},
		// Malformed SPIFFE IDs in certificates never match, even when
		// their decoded or resolved form would.
		{"cert percent-encoded", rule("spiffe://example.com/a"), certOpts{uris: []*url.URL{{Scheme: "spiffe", Host: "example.com", Path: "/a", RawPath: "/%61"}}}, false},
		{"cert encoded slash", rule("spiffe://example.com/*/*"), certOpts{uris: u("spiffe://example.com/a%2Fb")}, false},
		{"cert dot-dot", rule("spiffe://example.com/**"), certOpts{uris: u("spiffe://example.com/a/../b")}, false},
		{"cert dot", rule("spiffe://example.com/**"), certOpts{uris: u("spiffe://example.com/./b")}, false},
		{"cert empty segment", rule("spiffe://example.com/**"), certOpts{uris: u("spiffe://example.com/a//b")}, false},
		{"cert trailing slash", rule("spiffe://example.com/**"), certOpts{uris: u("spiffe://example.com/a/")}, false},
		{"cert port", rule("spiffe://example.com/a"), certOpts{uris: u("spiffe://example.com:8443/a")}, false},
		{"cert userinfo", rule("spiffe://example.com/a"), certOpts{uris: u("spiffe://user@example.com/a")}, false},
		{"cert query", rule("spiffe://example.com/a"), certOpts{uris: u("spiffe://example.com/a?x=1")}, false},
		{"cert empty query", rule("spiffe://example.com/a"), certOpts{uris: u("spiffe://example.com/a?")}, false},
		{"cert fragment", rule("spiffe://example.com/a"), certOpts{uris: u("spiffe://example.com/a#f")}, false},
		{"cert NUL in path", rule("spiffe://example.com/*"), certOpts{uris: []*url.URL{{Scheme: "spiffe", Host: "example.com", Path: "/a\x00"}}}, false},
		{"cert bad character", rule("spiffe://example.com/*"), certOpts{uris: u("spiffe://example.com/a~b")}, false},
		{"cert no host", rule("spiffe://example.com/a"), certOpts{uris: u("spiffe:///a")}, false},
	})
}

func TestSPIFFEPathWildcardDepth(t *testing.T) {
	p, iv := parseSPIFFEPattern("spiffe://td/a/*/c/**")
	if iv != nil {
		t.Fatal(iv.problem)
	}
	for path, want := range map[string]bool{
		"":             false,
		"/a":           false,
		"/a/b":         false,
		"/a/b/c":       false,
		"/a/b/c/d":     true,
		"/a/b/c/d/e/f": true,
		"/a/b/x/d":     false,
		"/a/b/b/c/d":   false,
	} {
		if got := p.matchPath(path); got != want {
			t.Errorf("matchPath(%q) = %v, want %v", path, got, want)
		}
	}
}
