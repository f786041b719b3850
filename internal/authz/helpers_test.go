package authz

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

// certOpts describes a leaf for matcher tests. Unlike testpki.LeafOptions it
// can carry values a well-behaved CA would not issue (NUL bytes, two CNs,
// malformed SPIFFE IDs), which is exactly what the matchers must survive.
type certOpts struct {
	names  []pkix.AttributeTypeAndValue // subject, in order; may repeat types
	dns    []string
	emails []string
	ips    []net.IP
	uris   []*url.URL
}

// issue signs a leaf with ca, parses it back (so every value has been
// through crypto/x509's encoder and parser) and returns its identity.
func issue(t testing.TB, ca *testpki.CA, o certOpts) *identity.Identity {
	t.Helper()
	key := testpki.NewKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:   big.NewInt(time.Now().UnixNano()),
		Subject:        pkix.Name{ExtraNames: o.names},
		NotBefore:      time.Now().Add(-time.Hour),
		NotAfter:       time.Now().Add(time.Hour),
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		DNSNames:       o.dns,
		EmailAddresses: o.emails,
		IPAddresses:    o.ips,
		URIs:           o.uris,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	chain := []*x509.Certificate{c, ca.Cert}
	for _, p := range ca.Parents {
		chain = append(chain, p.Cert)
	}
	return identity.New(chain)
}

// fakeLeaf returns an identity whose leaf was never encoded: for values
// crypto/x509 cannot produce (a 16-byte IPv4-mapped IP SAN) and for fuzzing.
func fakeLeaf(c *x509.Certificate) *identity.Identity {
	return &identity.Identity{Leaf: c, Chain: []*x509.Certificate{c}}
}

// Subject attributes for certOpts.names.
func attr(oid asn1.ObjectIdentifier, v string) pkix.AttributeTypeAndValue {
	return pkix.AttributeTypeAndValue{Type: oid, Value: v}
}
func cn(v string) pkix.AttributeTypeAndValue      { return attr(oidCN, v) }
func org(v string) pkix.AttributeTypeAndValue     { return attr(oidO, v) }
func ou(v string) pkix.AttributeTypeAndValue      { return attr(oidOU, v) }
func country(v string) pkix.AttributeTypeAndValue { return attr(oidC, v) }

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("parse URL %q: %v", s, err)
	}
	return u
}

func mustCompile(t testing.TB, rules ...Rule) *Policy {
	t.Helper()
	p, err := Compile(rules, loadPEM)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

// loadPEM is the issuer loader tests use; the gateway passes certsource's.
func loadPEM(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return certs, nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", path, err)
		}
		certs = append(certs, c)
	}
}

// matchCase is one row of a matcher table: a rule, a certificate and the
// expected decision.
type matchCase struct {
	name string
	rule Rule
	cert certOpts
	want bool
}

func runMatchCases(t *testing.T, cases []matchCase) {
	t.Helper()
	ca := testpki.NewRoot(t, "authz test root")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, tc.rule)
			id := issue(t, ca, tc.cert)
			d := p.Evaluate(id)
			if d.Allowed != tc.want {
				t.Fatalf("Evaluate = %+v, want Allowed=%v", d, tc.want)
			}
			if !d.Allowed && d.Reason == "" {
				t.Fatalf("denied without a reason")
			}
		})
	}
}

func verifyOpts(root *testpki.CA, leaf *testpki.Leaf) x509.VerifyOptions {
	inter := x509.NewCertPool()
	for _, c := range leaf.Chain[1:] {
		inter.AddCert(c)
	}
	return x509.VerifyOptions{
		Roots:         testpki.Pool(root),
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}
