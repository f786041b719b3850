package authz

import (
	"encoding/pem"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

func TestCompileErrors(t *testing.T) {
	dir := t.TempDir()
	keyOnly := filepath.Join(dir, "key.pem")
	testpki.WriteFile(t, keyOnly, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0, 0, 0}})) // junk, not a key
	missing := filepath.Join(dir, "missing.pem")

	for _, tc := range []struct {
		rule Rule
		want string
	}{
		{Rule{}, `allow[1]: rule sets no field (set at least one of spiffe_id, san_uri, san_dns, san_email, san_ip, subject, issuer, fingerprint_sha256 or spki_sha256; a route without allow rules admits every verified client)`},

		{Rule{SPIFFEID: "spiffe://x/**/y"}, `allow[1].spiffe_id: "spiffe://x/**/y": "**" is only allowed as the last path segment (use "*" to match exactly one segment)`},
		{Rule{SPIFFEID: "spiffe://x/a*"}, `allow[1].spiffe_id: "spiffe://x/a*": "*" must be a whole path segment (use "*" as a whole segment for exactly one segment, or "**" as the last segment for one or more)`},
		{Rule{SPIFFEID: "spiffe://x/***"}, `allow[1].spiffe_id: "spiffe://x/***": "*" must be a whole path segment (use "*" as a whole segment for exactly one segment, or "**" as the last segment for one or more)`},
		{Rule{SPIFFEID: "spiffe://*.example.com/a"}, `allow[1].spiffe_id: "spiffe://*.example.com/a": wildcards are not allowed in the trust domain (write the trust domain out)`},
		{Rule{SPIFFEID: "https://example.com/a"}, `allow[1].spiffe_id: "https://example.com/a": not a SPIFFE ID (use "spiffe://<trust-domain>/<path>")`},
		{Rule{SPIFFEID: "spiffe:///a"}, `allow[1].spiffe_id: "spiffe:///a": missing trust domain (use "spiffe://<trust-domain>/<path>")`},
		{Rule{SPIFFEID: "spiffe://example.com/"}, `allow[1].spiffe_id: "spiffe://example.com/": empty path segment (remove the doubled or trailing "/")`},
		{Rule{SPIFFEID: "spiffe://example.com/a//b"}, `allow[1].spiffe_id: "spiffe://example.com/a//b": empty path segment (remove the doubled or trailing "/")`},
		{Rule{SPIFFEID: "spiffe://example.com/a/../b"}, `allow[1].spiffe_id: "spiffe://example.com/a/../b": dot segment in path (write the path out without "." or "..")`},
		{Rule{SPIFFEID: "spiffe://example.com:443/a"}, `allow[1].spiffe_id: "spiffe://example.com:443/a": a SPIFFE ID has no port (use "spiffe://<trust-domain>/<path>")`},
		{Rule{SPIFFEID: "spiffe://u@example.com/a"}, `allow[1].spiffe_id: "spiffe://u@example.com/a": a SPIFFE ID has no userinfo (use "spiffe://<trust-domain>/<path>")`},
		{Rule{SPIFFEID: "spiffe://example.com/a?b"}, `allow[1].spiffe_id: "spiffe://example.com/a?b": a SPIFFE ID has no query or fragment (use "spiffe://<trust-domain>/<path>")`},
		{Rule{SPIFFEID: "spiffe://example.com/%61"}, `allow[1].spiffe_id: "spiffe://example.com/%61": percent-encoding is not allowed in a SPIFFE ID (a path segment holds only letters, digits, '.', '-' and '_')`},
		{Rule{SPIFFEID: "spiffe://example.com/a b"}, `allow[1].spiffe_id: "spiffe://example.com/a b": invalid character ' ' in path (a path segment holds only letters, digits, '.', '-' and '_')`},
		{Rule{SPIFFEID: "spiffe://exa$mple.com/a"}, `allow[1].spiffe_id: "spiffe://exa$mple.com/a": invalid character '$' in trust domain (a trust domain holds only letters, digits, '.', '-' and '_')`},

		{Rule{SANURI: "HTTPS://id.example.com/a"}, `allow[1].san_uri: "HTTPS://id.example.com/a": not in the canonical form certificates are compared in (use "https://id.example.com/a")`},
		{Rule{SANURI: "/relative"}, `allow[1].san_uri: "/relative": not an absolute URI (use a URI such as "https://id.example.com/partner-a")`},
		{Rule{SANURI: "https://x/a\x00"}, `allow[1].san_uri: "https://x/a\x00": invalid character '\x00' (percent-encode it)`},

		{Rule{SANDNS: "*.*.example.com"}, `allow[1].san_dns: "*.*.example.com": "*" is only allowed as the whole left-most label (use "*.example.com")`},
		{Rule{SANDNS: "a.*.example.com"}, `allow[1].san_dns: "a.*.example.com": "*" is only allowed as the whole left-most label (use "*.example.com")`},
		{Rule{SANDNS: "api*.example.com"}, `allow[1].san_dns: "api*.example.com": "*" is only allowed as the whole left-most label (use "*.example.com")`},
		{Rule{SANDNS: "*"}, `allow[1].san_dns: "*": "*" alone matches no domain (use "*.example.com")`},
		{Rule{SANDNS: "a..example.com"}, `allow[1].san_dns: "a..example.com": empty label (remove the doubled or leading ".")`},
		{Rule{SANDNS: "."}, `allow[1].san_dns: ".": empty host name (use a host name such as "api.example.com" or "*.example.com")`},
		{Rule{SANDNS: "api.example.com\x00"}, `allow[1].san_dns: "api.example.com\x00": invalid character '\x00' (a label holds only letters, digits, '-' and '_')`},

		{Rule{SANEmail: "ops"}, `allow[1].san_email: "ops": not an email address (use an address such as "ops@example.com")`},
		{Rule{SANEmail: "ops@"}, `allow[1].san_email: "ops@": not an email address (use an address such as "ops@example.com")`},
		{Rule{SANEmail: "o ps@example.com"}, `allow[1].san_email: "o ps@example.com": invalid character ' ' in local part (use an address such as "ops@example.com")`},
		{Rule{SANEmail: "ops@*.example.com"}, `allow[1].san_email: "ops@*.example.com": domain: "*" is not allowed here (use a host name such as "api.example.com" or "*.example.com")`},

		{Rule{SANIP: "10.0.0.1/8"}, `allow[1].san_ip: "10.0.0.1/8": prefix has host bits set (use "10.0.0.0/8")`},
		{Rule{SANIP: "10.0.0.256"}, `allow[1].san_ip: "10.0.0.256": not an IP address (use an address such as "10.1.2.3" or a prefix such as "10.0.0.0/8")`},
		{Rule{SANIP: "10.0.0.0/33"}, `allow[1].san_ip: "10.0.0.0/33": not an IP prefix (use an address such as "10.1.2.3" or a prefix such as "10.0.0.0/8")`},
		{Rule{SANIP: "fe80::1%eth0"}, `allow[1].san_ip: "fe80::1%eth0": an IP SAN has no zone (remove the "%eth0")`},

		{Rule{Subject: Subject{CN: "a\x00"}}, `allow[1].subject.cn: "a\x00": contains a NUL byte (remove it; a certificate value with NUL never matches)`},
		{Rule{Subject: Subject{CN: "a", C: "USA"}}, `allow[1].subject.c: "USA": not a two-letter country code (use an ISO 3166 code such as "US", as written in the certificate)`},

		{Rule{FingerprintSHA256: "3b6a...e1"}, `allow[1].fingerprint_sha256: "3b6a...e1": not a SHA-256 fingerprint (use the 64 hex digits of "openssl x509 -noout -fingerprint -sha256", with or without colons)`},
		{Rule{FingerprintSHA256: "AB:CD"}, `allow[1].fingerprint_sha256: "AB:CD": not a SHA-256 fingerprint (use the 64 hex digits of "openssl x509 -noout -fingerprint -sha256", with or without colons)`},
		{Rule{SPKISHA256: "d4rZ0KgC"}, `allow[1].spki_sha256: "d4rZ0KgC": not a SHA-256 SPKI pin (use 64 hex digits (colons optional) or base64 as in "openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64")`},

		{Rule{Issuer: keyOnly}, `allow[1].issuer: "` + keyOnly + `": file holds no certificate (give the path of a PEM file holding the issuing CA certificate)`},
		{Rule{Issuer: missing}, `allow[1].issuer: "` + missing + `": load CA certificate: open ` + missing + `: no such file or directory (give the path of a PEM file holding the issuing CA certificate)`},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := Compile([]Rule{{SANDNS: "ok.example.com"}, tc.rule}, loadPEM)
			if err == nil {
				t.Fatal("Compile succeeded")
			}
			if err.Error() != tc.want {
				t.Fatalf("error\n  %s\nwant\n  %s", err, tc.want)
			}
			var re *RuleError
			if !errors.As(err, &re) || re.Index != 1 {
				t.Fatalf("error is not a *RuleError for rule 1: %#v", err)
			}
		})
	}
}

func TestCompileIssuerErrorWraps(t *testing.T) {
	_, err := Compile([]Rule{{Issuer: filepath.Join(t.TempDir(), "nope.pem")}}, loadPEM)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error %v does not wrap fs.ErrNotExist", err)
	}
	if _, err := Compile([]Rule{{Issuer: "ca.pem"}}, nil); err == nil {
		t.Fatal("issuer rule compiled without a loader")
	}
}

func TestCompileAccepts(t *testing.T) {
	for _, r := range []Rule{
		{SPIFFEID: "spiffe://example.com"},
		{SPIFFEID: "spiffe://Example.COM/A/b_c-d.e"},
		{SPIFFEID: "spiffe://example.com/*/x/**"},
		{SANURI: "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"},
		{SANDNS: "api.example.com."},
		{SANDNS: "*.example.com"},
		{SANDNS: "_svc.example.com"},
		{SANEmail: "first.last+tag@Example.com"},
		{SANIP: "::1"},
		{SANIP: "0.0.0.0/0"},
		{Subject: Subject{CN: "x", O: "Partner Inc", OU: "billing", C: "de"}},
		{FingerprintSHA256: "3B6A27BCCEB6A42D62A3A8D02A6F0D73653215771DE243A63AC048A18B59DA29"},
		{SPKISHA256: "d6qzRu9zOECb90Uez27xWltNsj0e1Md7GkYYkVoZWmM="},
	} {
		if _, err := Compile([]Rule{r}, loadPEM); err != nil {
			t.Errorf("Compile(%+v): %v", r, err)
		}
	}
}
