package config

import (
	"strings"
	"testing"
)

// A YAML mistake is reported at the line that makes it, in gatehouse's
// words, not at the line where the YAML parser gave up.
func TestSyntaxProblemLocated(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"under-indented key in a list item", "server_tls:\n  certificates:\n    - cert: a.pem\n     key: b.pem\n",
			`g.yaml:4: "key:" is indented 5 spaces, between "- cert:" (4) and "cert:" (6) (align it with the key it belongs to)`},
		{"under-indented top key", "server_tls:\n  min_version: \"1.2\"\n client_auth:\n  mode: require\n",
			`g.yaml:3: "client_auth:" is indented 1 space, between "server_tls:" (0) and "min_version:" (2)`},
		{"over-indented key", "routes:\n  - name: a\n    path: /a\n      backend: x\n",
			`g.yaml:4: "backend:" is indented 6 spaces, deeper than the line above, which already has a value (indent it like "name:"`},
		{"tab", "routes:\n\t- name: a\n", `g.yaml:2: indented with a tab (YAML indents with spaces only)`},
		{"open quote", "listen: \"abc\nroutes: []\n", `g.yaml:1: a quoted value is not closed`},
		{"colon in value", "log: {level: info}\nlisten: a: b\n", `g.yaml:2: a value contains ": " (quote the value`},
		{"block scalar and flow list are not indentation", "routes:\n  - name: a\n    methods: [GET,\n        POST]\n    backend: |\n       x\n   y: 1\n",
			`g.yaml:7: "y:" is indented 3 spaces`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("g.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
		})
	}
}

// Every problem of a file is reported in one run: kinds, keys and values
// refused while reading the tree, and the semantic checks of what could be
// read, each at its own line, without repeating a refused field as missing.
func TestParseAllReportsEverything(t *testing.T) {
	data := `listen: 8443
server_tls:
  certificates: [{cert: s.pem, key: k.pem}]
  min_version: "1.1"
client_auth: { mode: requir, trusted_cas: [ca.pem] }
hsts: { max_age: soon }
routes:
  - name: orders
    path: orders/
    backend: [http://127.0.0.1:9001]
    allow:
      - fingerprint_sha256: "zz"
      - fingerprint_sha256: "yy"
      - { san_dns: "a.*.example.com", spki_sha256: "nope" }
  - name: partner
    path: /partner/
    backnd: http://127.0.0.1:9002
    methods: [GET]
    methods: [POST]
`
	f, errs := ParseAll("g.yaml", []byte(data))
	if f == nil {
		t.Fatal("ParseAll returned no configuration for a file that decodes")
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{
		`g.yaml:1: listen: "8443" is not host:port`,
		`g.yaml:4: server_tls.min_version: "1.1" is insecure`,
		`g.yaml:5: client_auth.mode: unknown mode "requir"`,
		`g.yaml:6: hsts.max_age: invalid duration "soon"`,
		`g.yaml:9: routes[0].path: "orders/" must start with "/" (use "/orders/")`,
		`g.yaml:10: routes[0].backend: expected a single string value`,
		`g.yaml:12: routes[0].allow[0].fingerprint_sha256: "zz": not a SHA-256 fingerprint`,
		`g.yaml:13: routes[0].allow[1].fingerprint_sha256: "yy": not a SHA-256 fingerprint`,
		`g.yaml:14: routes[0].allow[2].san_dns: "a.*.example.com"`,
		`g.yaml:14: routes[0].allow[2].spki_sha256: "nope": not a SHA-256 SPKI pin`,
		`g.yaml:17: routes[1].backnd: unknown key (did you mean backend?`,
		`g.yaml:19: routes[1].methods: written twice (first at line 18; keep one)`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d:\n got %s\nwant %s...", i, got[i], want[i])
		}
	}
}

func TestUnknownKeySuggestion(t *testing.T) {
	_, err := Parse("g.yaml", []byte("client_auth: { trusted_ca: [ca.pem] }\n"))
	if err == nil || !strings.Contains(err.Error(), "did you mean trusted_cas?") {
		t.Errorf("err = %v", err)
	}
	_, err = Parse("g.yaml", []byte("zzzzzz: 1\n"))
	if err == nil || strings.Contains(err.Error(), "did you mean") {
		t.Errorf("a far-off key got a suggestion: %v", err)
	}
}
