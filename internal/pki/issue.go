package pki

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/keypolicy"
	"github.com/gatehouse/gatehouse/internal/pki/store"
	"github.com/gatehouse/gatehouse/internal/units"
)

// ErrNameNotAllowed is returned when a requested name is outside the CA's
// name constraints.
var ErrNameNotAllowed = errors.New("name not allowed by this CA's name constraints")

// IssueRequest asks for a leaf certificate with a new key.
type IssueRequest struct {
	// Profile is ProfileServer or ProfileClient. Required.
	Profile Profile
	// CN is the subject common name. Required.
	CN string
	// DNS, IPs, URIs and Emails are the subject alternative names. A
	// server certificate needs at least one DNS name or IP.
	DNS    []string
	IPs    []net.IP
	URIs   []*url.URL
	Emails []string
	// Validity is how long the certificate is valid. If zero,
	// DefaultLeafValidity (or the CA maximum, if lower).
	Validity time.Duration
	// KeyType of the new key. If empty, KeyECDSAP256.
	KeyType KeyType
}

// Issued is a newly issued certificate.
type Issued struct {
	// Chain is the leaf followed by the intermediates, never the root.
	Chain []*x509.Certificate
	// Key is the leaf's private key; nil for a certificate signed from a
	// CSR.
	Key crypto.Signer
	// Record is the certificate's inventory entry.
	Record store.Record
}

// Cert is the leaf certificate, Chain[0].
func (i *Issued) Cert() *x509.Certificate { return i.Chain[0] }

// ChainPEM is the leaf followed by the intermediates, PEM encoded.
func (i *Issued) ChainPEM() []byte { return CertsPEM(i.Chain...) }

// KeyPEM is the leaf key as PEM PKCS#8, encrypted (PBES2, AES-256-CBC,
// scrypt) when passphrase is not empty.
func (i *Issued) KeyPEM(passphrase []byte) ([]byte, error) {
	if i.Key == nil {
		return nil, errors.New("encode key: certificate was signed from a CSR, its key is not here")
	}
	return MarshalKeyPEM(i.Key, passphrase)
}

// Issue generates a key and issues a certificate for it.
func (ca *CA) Issue(req IssueRequest) (*Issued, error) {
	tmpl, err := ca.leafTemplate(req.Profile, req.CN, req.Validity)
	if err != nil {
		return nil, fmt.Errorf("issue %q: %w", req.CN, err)
	}
	tmpl.Subject = pkix.Name{CommonName: req.CN}
	if err := setSANs(tmpl, req.DNS, req.IPs, req.URIs, req.Emails); err != nil {
		return nil, fmt.Errorf("issue %q: %w", req.CN, err)
	}
	if err := checkProfileNames(req.Profile, tmpl); err != nil {
		return nil, fmt.Errorf("issue %q: %w", req.CN, err)
	}
	key, err := req.KeyType.Generate()
	if err != nil {
		return nil, fmt.Errorf("issue %q: %w", req.CN, err)
	}
	iss, err := ca.sign(tmpl, key.Public(), req.Profile)
	if err != nil {
		return nil, fmt.Errorf("issue %q: %w", req.CN, err)
	}
	iss.Key = key
	return iss, nil
}

// leafTemplate is the part of a leaf that does not depend on the request's
// names: validity, usages, and where to check revocation.
func (ca *CA) leafTemplate(p Profile, cn string, validity time.Duration) (*x509.Certificate, error) {
	if _, err := ParseProfile(string(p)); err != nil {
		return nil, err
	}
	if strings.TrimSpace(cn) == "" {
		return nil, errors.New("a common name is required")
	}
	if strings.ContainsRune(cn, 0) || len(cn) > 64 {
		return nil, fmt.Errorf("common name %q: must be 1 to 64 characters without NUL", cn)
	}
	v, err := ca.validityFor(p, validity)
	if err != nil {
		return nil, err
	}
	now := ca.now()
	t := &x509.Certificate{
		NotBefore:             now.Add(-leafBackdate), // tolerate a little clock skew
		NotAfter:              now.Add(v),
		ExtKeyUsage:           p.extKeyUsage(),
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
	if t.NotAfter.After(ca.issuer.NotAfter) {
		return nil, fmt.Errorf("validity %s would outlast the issuing CA, which expires %s",
			units.FormatDuration(v), ca.issuer.NotAfter.UTC().Format(time.DateOnly))
	}
	if u := ca.settings.CRLURL(); u != "" {
		t.CRLDistributionPoints = []string{u}
	}
	if u := ca.settings.OCSPURL(); u != "" {
		t.OCSPServer = []string{u}
	}
	return t, nil
}

func setSANs(t *x509.Certificate, dns []string, ips []net.IP, uris []*url.URL, emails []string) error {
	for _, d := range dns {
		if !validDNSName(d) {
			return fmt.Errorf("DNS name %q is not a valid host name", d)
		}
		t.DNSNames = append(t.DNSNames, strings.ToLower(d))
	}
	for _, ip := range ips {
		if ip == nil || (ip.To4() == nil && ip.To16() == nil) {
			return fmt.Errorf("IP address %v is not valid", ip)
		}
		t.IPAddresses = append(t.IPAddresses, ip)
	}
	for _, u := range uris {
		if u == nil || u.Scheme == "" || strings.ContainsRune(u.String(), 0) {
			return fmt.Errorf("URI %v: need an absolute URI like spiffe://example.com/svc", u)
		}
		t.URIs = append(t.URIs, u)
	}
	for _, e := range emails {
		a, err := mail.ParseAddress(e)
		if err != nil || a.Address != e {
			return fmt.Errorf("email %q is not a plain address like name@example.com", e)
		}
		t.EmailAddresses = append(t.EmailAddresses, e)
	}
	return nil
}

func checkProfileNames(p Profile, t *x509.Certificate) error {
	if p == ProfileServer && len(t.DNSNames) == 0 && len(t.IPAddresses) == 0 {
		return errors.New("a server certificate needs at least one DNS name or IP address (--dns, --ip)")
	}
	return nil
}

// validDNSName accepts host names and a leading wildcard label.
func validDNSName(s string) bool {
	s = strings.TrimPrefix(s, "*.")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// sign completes tmpl with a fresh serial and key identifiers, signs it,
// checks it against the CA's chain (which enforces the name constraints)
// and records it. A serial collision, however unlikely, is retried.
func (ca *CA) sign(tmpl *x509.Certificate, pub crypto.PublicKey, p Profile) (*Issued, error) {
	// Every issuance path ends here: the CA issues only keys the gateway
	// accepts (internal/keypolicy).
	if err := keypolicy.Check(pub); err != nil {
		return nil, err
	}
	key, err := ca.signer()
	if err != nil {
		return nil, err
	}
	tmpl.KeyUsage = keyUsage(pub)
	if tmpl.SubjectKeyId, err = subjectKeyID(pub); err != nil {
		return nil, fmt.Errorf("compute key identifier: %w", err)
	}
	for attempt := 0; ; attempt++ {
		if tmpl.SerialNumber, err = randomSerial(); err != nil {
			return nil, err
		}
		leaf, err := createCert(tmpl, ca.issuer, pub, key)
		if err != nil {
			return nil, fmt.Errorf("sign certificate: %w", err)
		}
		if err := ca.verifyLeaf(leaf); err != nil {
			return nil, err
		}
		rec := recordOf(leaf, p, ca.now())
		err = ca.store.Insert(context.Background(), rec)
		if errors.Is(err, store.ErrDuplicateSerial) && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("record certificate: %w", err)
		}
		return &Issued{Chain: append([]*x509.Certificate{leaf}, ca.chain...), Record: rec}, nil
	}
}

// verifyLeaf runs the standard verifier over a new leaf before anyone sees
// it: it catches names outside the CA's name constraints, and any mistake
// that would make the certificate useless.
func (ca *CA) verifyLeaf(leaf *x509.Certificate) error {
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(ca.root)
	for _, c := range ca.chain {
		inters.AddCert(c)
	}
	backdate, _ := lifetimeSplit(leaf.NotAfter.Sub(leaf.NotBefore))
	_, err := leaf.Verify(x509.VerifyOptions{
		// At issuance time: the backdate after NotBefore.
		Roots: roots, Intermediates: inters, CurrentTime: leaf.NotBefore.Add(backdate),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) && inv.Reason == x509.CANotAuthorizedForThisName {
		return fmt.Errorf("%w: %s", ErrNameNotAllowed, inv.Detail)
	}
	if err != nil {
		return fmt.Errorf("check new certificate against the CA chain: %w", err)
	}
	return nil
}

func recordOf(c *x509.Certificate, p Profile, now time.Time) store.Record {
	var sans []string
	for _, d := range c.DNSNames {
		sans = append(sans, "dns:"+d)
	}
	for _, ip := range c.IPAddresses {
		sans = append(sans, "ip:"+ip.String())
	}
	for _, u := range c.URIs {
		sans = append(sans, "uri:"+u.String())
	}
	for _, e := range c.EmailAddresses {
		sans = append(sans, "email:"+e)
	}
	return store.Record{
		Serial:    store.FormatSerial(c.SerialNumber),
		Subject:   c.Subject.String(),
		SANs:      sans,
		Profile:   string(p),
		NotBefore: c.NotBefore.UTC(),
		NotAfter:  c.NotAfter.UTC(),
		Status:    store.StatusValid,
		IssuedAt:  now.UTC(),
		DER:       c.Raw,
	}
}
