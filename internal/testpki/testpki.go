package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a test certificate authority (a root or an intermediate).
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Parents are the CAs above this one, nearest first (empty for a root).
	Parents []*CA
}

// NewRoot creates a self-signed root CA with an ECDSA P-256 key.
func NewRoot(t testing.TB, cn string) *CA {
	t.Helper()
	return newCA(t, cn, nil)
}

// Intermediate creates a CA signed by ca.
func (ca *CA) Intermediate(t testing.TB, cn string) *CA {
	t.Helper()
	return newCA(t, cn, ca)
}

// newCA creates a CA valid from an hour ago for a day, signed by parent
// (self-signed when parent is nil).
func newCA(t testing.TB, cn string, parent *CA) *CA {
	t.Helper()
	key := NewKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"gatehouse test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	signer, signerKey, parents := tmpl, key, []*CA(nil)
	if parent != nil {
		signer, signerKey = parent.Cert, parent.Key
		parents = append([]*CA{parent}, parent.Parents...)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, key.Public(), signerKey)
	if err != nil {
		t.Fatalf("testpki: create CA %q: %v", cn, err)
	}
	return &CA{Cert: parse(t, der), Key: key, Parents: parents}
}

// LeafOptions describes a leaf certificate. Zero values give a client
// certificate valid from an hour ago for a day.
type LeafOptions struct {
	CN, Org, OU, Country string
	DNS                  []string
	IPs                  []net.IP
	URIs                 []string
	Emails               []string
	// EKU defaults to clientAuth.
	EKU []x509.ExtKeyUsage
	// NotBefore and NotAfter default to now-1h and now+24h.
	NotBefore, NotAfter time.Time
	// Key defaults to a fresh ECDSA P-256 key.
	Key crypto.Signer
	// Serial defaults to a random 128-bit number.
	Serial *big.Int
	// OCSPServer and CRLDistributionPoints go into the certificate as given.
	OCSPServer            []string
	CRLDistributionPoints []string
	// IssuingCertificateURL is the AIA caIssuers URL, as given.
	IssuingCertificateURL []string
}

// Leaf is an end-entity certificate and its key.
type Leaf struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Chain is the leaf followed by its intermediates (never the root).
	Chain []*x509.Certificate
}

// Server issues a server certificate (serverAuth) for the given DNS names
// and 127.0.0.1.
func (ca *CA) Server(t testing.TB, dns ...string) *Leaf {
	t.Helper()
	cn := "server"
	if len(dns) > 0 {
		cn = dns[0]
	}
	return ca.Leaf(t, LeafOptions{CN: cn, DNS: dns, IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
}

// Client issues a client certificate (clientAuth) with the given CN.
func (ca *CA) Client(t testing.TB, cn string) *Leaf {
	t.Helper()
	return ca.Leaf(t, LeafOptions{CN: cn})
}

// Leaf issues an end-entity certificate.
func (ca *CA) Leaf(t testing.TB, o LeafOptions) *Leaf {
	t.Helper()
	key := o.Key
	if key == nil {
		key = NewKey(t)
	}
	if o.EKU == nil {
		o.EKU = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(24 * time.Hour)
	}
	sn := o.Serial
	if sn == nil {
		sn = serial(t)
	}
	name := pkix.Name{CommonName: o.CN}
	if o.Org != "" {
		name.Organization = []string{o.Org}
	}
	if o.OU != "" {
		name.OrganizationalUnit = []string{o.OU}
	}
	if o.Country != "" {
		name.Country = []string{o.Country}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               name,
		NotBefore:             o.NotBefore,
		NotAfter:              o.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           o.EKU,
		BasicConstraintsValid: true,
		DNSNames:              o.DNS,
		IPAddresses:           o.IPs,
		EmailAddresses:        o.Emails,
		OCSPServer:            o.OCSPServer,
		CRLDistributionPoints: o.CRLDistributionPoints,
		IssuingCertificateURL: o.IssuingCertificateURL,
	}
	for _, u := range o.URIs {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatalf("testpki: URI SAN %q: %v", u, err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatalf("testpki: create leaf: %v", err)
	}
	chain := []*x509.Certificate{parse(t, der)}
	if len(ca.Parents) > 0 { // ca is an intermediate: serve it, and those above it but the root
		chain = append(chain, ca.Cert)
		for _, p := range ca.Parents[:len(ca.Parents)-1] {
			chain = append(chain, p.Cert)
		}
	}
	return &Leaf{Cert: chain[0], Key: key, Chain: chain}
}

// Root returns the root at the top of ca's hierarchy.
func (ca *CA) Root() *CA {
	if len(ca.Parents) == 0 {
		return ca
	}
	return ca.Parents[len(ca.Parents)-1]
}

// CRL returns a DER CRL signed by ca that lists the given serials as revoked.
func (ca *CA) CRL(t testing.TB, number int64, thisUpdate, nextUpdate time.Time, revoked ...*big.Int) []byte {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, s := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: thisUpdate.Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(number),
		ThisUpdate:                thisUpdate,
		NextUpdate:                nextUpdate,
		RevokedCertificateEntries: entries,
	}, ca.Cert, ca.Key)
	if err != nil {
		t.Fatalf("testpki: create CRL: %v", err)
	}
	return der
}

// CertPEM returns the CA certificate as PEM.
func (ca *CA) CertPEM() []byte { return CertsPEM(ca.Cert) }

// WriteCert writes the CA certificate as PEM into dir and returns its path.
func (ca *CA) WriteCert(t testing.TB, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	WriteFile(t, p, ca.CertPEM())
	return p
}

// ChainPEM returns the leaf and intermediates as PEM.
func (l *Leaf) ChainPEM() []byte { return CertsPEM(l.Chain...) }

// KeyPEM returns the private key as unencrypted PKCS#8 PEM.
func (l *Leaf) KeyPEM(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(l.Key)
	if err != nil {
		t.Fatalf("testpki: marshal key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// Write writes NAME.pem (chain) and NAME-key.pem into dir and returns the paths.
func (l *Leaf) Write(t testing.TB, dir, name string) (certPath, keyPath string) {
	t.Helper()
	certPath = filepath.Join(dir, name+".pem")
	keyPath = filepath.Join(dir, name+"-key.pem")
	WriteFile(t, certPath, l.ChainPEM())
	WriteFile(t, keyPath, l.KeyPEM(t))
	return certPath, keyPath
}

// TLSCertificate returns the leaf as a tls.Certificate with its chain.
func (l *Leaf) TLSCertificate() tls.Certificate {
	c := tls.Certificate{PrivateKey: l.Key, Leaf: l.Cert}
	for _, x := range l.Chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

// CertsPEM encodes certificates as consecutive PEM blocks.
func CertsPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// Pool returns a cert pool holding the given CAs.
func Pool(cas ...*CA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range cas {
		p.AddCert(c.Cert)
	}
	return p
}

// NewKey returns a fresh ECDSA P-256 key.
func NewKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testpki: generate key: %v", err)
	}
	return k
}

// WriteFile writes data to path with mode 0600, failing the test on error.
func WriteFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("testpki: write %s: %v", path, err)
	}
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatalf("testpki: serial: %v", err)
	}
	return n.Add(n, big.NewInt(1))
}

func parse(t testing.TB, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testpki: parse: %v", err)
	}
	return c
}
