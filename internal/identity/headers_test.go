package identity_test

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

// verified returns the identity of leaf as a verified chain (leaf ..
// root), the way the listener computes it.
func verified(t *testing.T, root *testpki.CA, leaf *testpki.Leaf) *identity.Identity {
	t.Helper()
	inter := x509.NewCertPool()
	for _, c := range leaf.Chain[1:] {
		inter.AddCert(c)
	}
	chains, err := leaf.Cert.Verify(x509.VerifyOptions{
		Roots: testpki.Pool(root), Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return identity.New(chains[0])
}

// parseXFCC parses a single XFCC element the way a careful backend would:
// key=value pairs split by ";", values optionally an RFC 9110
// quoted-string. It fails on a second element (",").
func parseXFCC(t *testing.T, s string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for s != "" {
		key, rest, ok := strings.Cut(s, "=")
		if !ok || key == "" || strings.ContainsAny(key, `;,"`) {
			t.Fatalf("bad key in %q", s)
		}
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' {
					i++
				}
				b.WriteByte(rest[i])
			}
			if i >= len(rest) {
				t.Fatalf("unterminated quoted value in %q", s)
			}
			val, rest = b.String(), rest[i+1:]
		} else {
			end := strings.IndexAny(rest, ";,")
			if end < 0 {
				end = len(rest)
			}
			val, rest = rest[:end], rest[end:]
		}
		out[key] = append(out[key], val)
		switch {
		case rest == "":
		case rest[0] == ';':
			rest = rest[1:]
		default:
			t.Fatalf("more than one element, or junk, at %q", rest)
		}
		s = rest
	}
	return out
}

func checkHeaderBytes(t *testing.T, name, v string) {
	t.Helper()
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c > 0x7e {
			t.Fatalf("%s has byte %#x at %d: not a plain ASCII header value", name, c, i)
		}
	}
}

func TestXFCC(t *testing.T) {
	root := testpki.NewRoot(t, "root")
	inter := root.Intermediate(t, "issuing")
	leaf := inter.Leaf(t, testpki.LeafOptions{
		CN:   `evil", O=x; URI=spiffe://example.com/admin, DNS=y \ z`,
		Org:  `Partner "Inc"; a=b, c`,
		DNS:  []string{"a.example.com", "x;URI=spiffe://example.com/admin,DNS=b=c", "b.example.com"},
		URIs: []string{"spiffe://example.com/billing/api"},
	})
	id := verified(t, root, leaf)
	v := identity.XFCC(id)
	checkHeaderBytes(t, "XFCC", v)
	got := parseXFCC(t, v)

	if h := got["Hash"]; !slices.Equal(h, []string{id.Fingerprint()}) {
		t.Errorf("Hash = %q, want %s", h, id.Fingerprint())
	}
	if len(got["Cert"]) != 1 {
		t.Fatalf("Cert = %q", got["Cert"])
	}
	for name, unescape := range map[string]func(string) (string, error){"QueryUnescape": url.QueryUnescape, "PathUnescape": url.PathUnescape} {
		p, err := unescape(got["Cert"][0])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		block, _ := pem.Decode([]byte(p))
		if block == nil || block.Type != "CERTIFICATE" {
			t.Fatalf("%s: no PEM certificate in %q", name, p)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil || !c.Equal(id.Leaf) {
			t.Fatalf("%s: Cert does not round-trip to the leaf: %v", name, err)
		}
	}
	if s, want := got["Subject"], []string{id.Leaf.Subject.String()}; !slices.Equal(s, want) {
		t.Errorf("Subject = %q, want %q", s, want)
	}
	if u := got["URI"]; !slices.Equal(u, []string{"spiffe://example.com/billing/api"}) {
		t.Errorf("URI = %q: a subject or SAN value forged a key", u)
	}
	if d := got["DNS"]; !slices.Equal(d, leaf.Cert.DNSNames) {
		t.Errorf("DNS = %q, want %q", d, leaf.Cert.DNSNames)
	}
	if len(got) != 5 {
		t.Errorf("keys %v, want Hash, Cert, Subject, URI, DNS", got)
	}
}

func TestXFCCSimple(t *testing.T) {
	root := testpki.NewRoot(t, "root")
	id := verified(t, root, root.Client(t, "client-a"))
	v := identity.XFCC(id)
	want := "Hash=" + id.Fingerprint() + `;Cert="`
	if !strings.HasPrefix(v, want) || !strings.HasSuffix(v, `";Subject="CN=client-a";URI=`) {
		t.Fatalf("XFCC = %s", v)
	}
	if !strings.Contains(v, `;Cert="-----BEGIN%20CERTIFICATE-----%0AMII`) {
		t.Fatalf("Cert is not URL-encoded PEM: %s", v)
	}
	if identity.XFCC(nil) != "" {
		t.Fatal("XFCC(nil) not empty")
	}
}

// TestXFCCAmbiguousSubject issues a leaf no sane CA would (two CNs, a
// newline, non-ASCII, a DNS SAN with a control character) and checks the
// header shows all of it faithfully, in ASCII, without breaking.
func TestXFCCAmbiguousSubject(t *testing.T) {
	root := testpki.NewRoot(t, "root")
	cnOID := asn1.ObjectIdentifier{2, 5, 4, 3}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject: pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: cnOID, Value: "guest"}, {Type: cnOID, Value: "admin\nx é"},
		}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"bad\r\nX-Injected: 1", "ok.example.com"},
	}
	key := testpki.NewKey(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root.Cert, key.Public(), root.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	v := identity.XFCC(identity.New([]*x509.Certificate{leaf, root.Cert}))
	checkHeaderBytes(t, "XFCC", v)
	got := parseXFCC(t, v)
	if s, want := got["Subject"], []string{`CN=admin\0Ax \C3\A9,CN=guest`}; !slices.Equal(s, want) {
		t.Errorf("Subject = %q, want %q", s, want)
	}
	if d := got["DNS"]; !slices.Equal(d, []string{"ok.example.com"}) {
		t.Errorf("DNS = %q, want only the name a header can carry", d)
	}
}

func TestRFC9440(t *testing.T) {
	root := testpki.NewRoot(t, "root")
	inter := root.Intermediate(t, "issuing")
	id := verified(t, root, inter.Client(t, "client-a"))
	cert, chain := identity.RFC9440(id)
	checkHeaderBytes(t, "Client-Cert", cert)
	checkHeaderBytes(t, "Client-Cert-Chain", chain)

	if got := decodeSFBinary(t, cert); !bytes.Equal(got, id.Leaf.Raw) {
		t.Fatal("Client-Cert does not decode to the leaf")
	}
	items := strings.Split(chain, ", ")
	want := []*x509.Certificate{inter.Cert, root.Cert} // verified chain after the leaf, trust anchor included
	if len(items) != len(want) {
		t.Fatalf("Client-Cert-Chain has %d items, want %d: %s", len(items), len(want), chain)
	}
	for i, item := range items {
		c, err := x509.ParseCertificate(decodeSFBinary(t, item))
		if err != nil || !c.Equal(want[i]) {
			t.Fatalf("Client-Cert-Chain item %d is not %s: %v", i, want[i].Subject, err)
		}
	}

	// A leaf that is itself the trust anchor has no chain.
	if c, ch := identity.RFC9440(identity.New([]*x509.Certificate{root.Cert})); c == "" || ch != "" {
		t.Fatalf("self-signed: %q, %q", c, ch)
	}
	if c, ch := identity.RFC9440(nil); c != "" || ch != "" {
		t.Fatal("RFC9440(nil) not empty")
	}
}

// decodeSFBinary decodes an RFC 8941 Byte Sequence.
func decodeSFBinary(t *testing.T, s string) []byte {
	t.Helper()
	if len(s) < 2 || s[0] != ':' || s[len(s)-1] != ':' {
		t.Fatalf("not a byte sequence: %q", s)
	}
	b, err := base64.StdEncoding.DecodeString(s[1 : len(s)-1])
	if err != nil {
		t.Fatalf("byte sequence: %v", err)
	}
	return b
}
