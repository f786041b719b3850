package config

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"
)

const minimal = `server_tls:
  certificates: [{cert: s.pem, key: k.pem}]
client_auth:
  trusted_cas: [ca.pem]
routes:
  - name: api
    backend: http://127.0.0.1:9001
`

func TestDefaults(t *testing.T) {
	f, err := Parse("/etc/gatehouse/g.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	c := f.Config
	if c.Listen != ":8443" || c.ServerTLS.MinVersion != "1.2" || c.ClientAuth.Mode != ModeRequire ||
		time.Duration(c.HSTS.MaxAge) != 2*365*24*time.Hour || c.Routes[0].Path != "/" || !c.Routes[0].Requires() ||
		c.Routes[0].MaxBody != DefaultMaxBody || c.Log.Audit != "stdout" || c.ClientAuth.Revocation.Unavailable != "reject" {
		t.Errorf("defaults not applied: %+v", c)
	}
	if got := f.Resolve("ca.pem"); got != "/etc/gatehouse/ca.pem" {
		t.Errorf("Resolve = %q", got)
	}
	if got := f.Line("routes[0].backend"); got != 7 {
		t.Errorf("Line(routes[0].backend) = %d, want 7", got)
	}
	if got := f.Line("routes[0].max_body"); got != 6 {
		t.Errorf("Line of an unwritten field = %d, want its parent's line 6", got)
	}
}

func TestStrictErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown top key", "routs: []\n" + minimal, `g.yaml:1: routs: unknown key (did you mean routes? allowed: admin, client_auth, expiry_alerts, hsts, identity_headers, limits, listen, log, rate_limit, rate_limit_store, routes, server_tls, timeouts)`},
		{"unknown nested key", strings.Replace(minimal, "backend:", "bakend:", 1), `g.yaml:7: routes[0].bakend: unknown key (did you mean backend? allowed: allow, backend, backend_pool, circuit_breaker, host, max_body, max_in_flight, methods, name, openapi, path, rate_limit, require_client_cert, upgrades, upstream_tls)`},
		{"wrong kind", "listen: [a, b]\n" + minimal, `g.yaml:1: listen: expected a single string value`},
		{"alias", "x: &a 1\n", `g.yaml:1: x: unknown key`},
		{"duplicate key", "listen: a\nlisten: b\n", `g.yaml:2: listen: written twice (first at line 1; keep one)`},
		{"bool", strings.Replace(minimal, "backend:", "require_client_cert: yes please\n    backend:", 1), `routes[0].require_client_cert: "yes please" is not a boolean (true or false)`},
		{"tls 1.1", minimal + "hsts: {max_age: 1y}\n" + "  \n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("g.yaml", []byte(tc.yaml))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v is not Errors", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
		})
	}
}

func TestValidateDoesNotMutate(t *testing.T) {
	f, err := Parse("g.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	before := f.Config
	before.Routes = append([]Route(nil), f.Config.Routes...)
	f.Config.Validate()
	if f.Config.Listen != before.Listen || f.Config.Routes[0].Path != before.Routes[0].Path {
		t.Error("Validate changed the configuration")
	}
}

func TestCipherSuite(t *testing.T) {
	for _, ok := range []string{"ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ecdhe-rsa-aes256-gcm-sha384"} {
		if _, err := CipherSuite(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for name, why := range map[string]string{
		"ECDHE-RSA-AES128-SHA":                  "CBC",
		"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "CBC",
		"TLS_RSA_WITH_AES_128_GCM_SHA256":       "forward secrecy",
		"AES256-GCM-SHA384":                     "forward secrecy",
		"RC4-SHA":                               "RC4",
		"TLS_ECDHE_RSA_WITH_RC4_128_SHA":        "RC4",
		"DES-CBC3-SHA":                          "3DES",
		"TLS_AES_128_GCM_SHA256":                "TLS 1.3",
		"NULL-SHA256":                           "no encryption",
	} {
		_, err := CipherSuite(name)
		if err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, why)
		}
	}
}

// The OpenSSL names allowed come from the one suite table (suitenames):
// exactly those of the six suites gatehouse serves.
func TestCipherSuiteOpenSSLNames(t *testing.T) {
	want := "ECDHE-ECDSA-AES128-GCM-SHA256, ECDHE-ECDSA-AES256-GCM-SHA384, ECDHE-ECDSA-CHACHA20-POLY1305, " +
		"ECDHE-RSA-AES128-GCM-SHA256, ECDHE-RSA-AES256-GCM-SHA384, ECDHE-RSA-CHACHA20-POLY1305"
	_, err := CipherSuite("NO-SUCH-SUITE")
	if err == nil || !strings.HasSuffix(err.Error(), "(allowed: "+want+")") {
		t.Errorf("err = %v, want the allowed list %s", err, want)
	}
	for _, name := range strings.Split(want, ", ") {
		id, err := CipherSuite(name)
		if err != nil || tls.CipherSuiteName(id) == "" || !strings.HasPrefix(tls.CipherSuiteName(id), "TLS_ECDHE_") {
			t.Errorf("%s = %#04x (%s), %v", name, id, tls.CipherSuiteName(id), err)
		}
	}
}

// FuzzParse: any input gives a config or an error whose every line names
// the file; never a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("listen: [\n"))
	f.Add([]byte("routes:\n  - name: a\n    allow:\n      - subject: {cn: x}\n"))
	f.Add([]byte("hsts: {max_age: 99999999999y}\n"))
	f.Add([]byte("x: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse("fuzz.yaml", data)
		if err == nil {
			return
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, "fuzz.yaml") {
				t.Fatalf("error line without the file name: %q", line)
			}
		}
	})
}

func TestFiles(t *testing.T) {
	f, err := Parse("/etc/gh/g.yaml", []byte(strings.Replace(minimal, "    backend: http://127.0.0.1:9001\n",
		"    backend: https://127.0.0.1:9001\n    upstream_tls: {ca: up.pem}\n    allow: [{issuer: /abs/partner.pem}]\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(f.Files(), " ")
	want := "/etc/gh/g.yaml /etc/gh/s.pem /etc/gh/k.pem /etc/gh/ca.pem /abs/partner.pem /etc/gh/up.pem"
	if got != want {
		t.Errorf("Files() = %s\nwant      %s", got, want)
	}
}
