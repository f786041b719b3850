package pki

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse/gatehouse/internal/keystore"
	"github.com/gatehouse/gatehouse/internal/pki/store"
)

// ErrNoKey is returned by operations that sign when the CA was opened
// without its key (OpenPublic).
var ErrNoKey = errors.New("CA opened without its key")

// CA is an open certificate authority. Its methods are safe for
// concurrent use, except that Now must be set before first use.
type CA struct {
	// Now returns the current time. If nil, time.Now is used. Tests set it
	// to move the CA's clock.
	Now func() time.Time

	dir      string
	settings Settings
	root     *x509.Certificate
	// issuer signs leaves, CRLs and OCSP responses: the intermediate when
	// there is one, else the root. chain is [intermediate] or empty.
	issuer *x509.Certificate
	chain  []*x509.Certificate
	key    crypto.Signer // issuer's key; nil after OpenPublic
	store  store.Store
	// responder is the OCSP signer NewServer keeps current; see delegate.go.
}

// InitOptions describes a new CA.
type InitOptions struct {
	// Name is the root's common name. If empty, DefaultName.
	Name string
	// KeyType of the CA keys. If empty, KeyECDSAP256.
	KeyType KeyType
	// Intermediate creates an intermediate CA that signs the leaves, so the
	// root key is needed only to create intermediates.
	Intermediate bool
	// Passphrase encrypts the CA keys. Required unless KeyStore is set.
	Passphrase []byte
	// KeyStore, if set, is a PKCS#11 URI naming a token (and, with
	// object=, a label prefix, else DefaultKeyLabel): the CA keys are
	// generated inside it, never leave it, and ca.json records their URIs.
	KeyStore string
	// Store, if set, is the PostgreSQL URL of the inventory; else SQLite
	// in DIR. A PostgreSQL inventory must be empty.
	Store string
	// URL is the public base URL of `gatehouse ca serve`; if set, leaves
	// carry <URL>/crl as CRL Distribution Point and <URL>/ocsp as OCSP
	// responder. If empty, they carry neither.
	URL string
	// MaxValidity bounds leaf validity. If zero, DefaultMaxValidity.
	MaxValidity time.Duration
	// RootValidity and IntermediateValidity default to 10 and 5 years.
	RootValidity, IntermediateValidity time.Duration
	// CRLValidity and OCSPValidity default to DefaultCRLValidity and
	// DefaultOCSPValidity.
	CRLValidity, OCSPValidity time.Duration
	// NameConstraints, if not nil, limits the names the CA certifies.
	NameConstraints *NameConstraints
	// Profiles sets per-profile validity limits. If nil, every profile
	// uses the CA-wide default and maximum.
	Profiles map[Profile]ProfileLimits
	// Now is the CA's clock. If nil, time.Now.
	Now func() time.Time
}

// Init creates a CA in dir, which must not exist or hold no CA: the root
// (DIR/ca.pem), optionally an intermediate (DIR/intermediate.pem), their
// keys encrypted with opts.Passphrase, the settings, the inventory and an
// empty CRL. On error nothing is left behind.
func Init(dir string, opts InitOptions) (ca *CA, err error) {
	if len(opts.Passphrase) == 0 && opts.KeyStore == "" {
		return nil, errors.New("init CA: a passphrase is required to encrypt the CA keys")
	}
	var rootURI, interURI *keystore.PKCS11URI
	if opts.KeyStore != "" {
		var err error
		if rootURI, interURI, err = tokenKeyURIs(opts.KeyStore); err != nil {
			return nil, fmt.Errorf("init CA: %w", err)
		}
	}
	if err := checkStoreURL(opts.Store); err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	kt, err := ParseKeyType(string(opts.KeyType))
	if err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	if err := checkURL(opts.URL); err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	s := Settings{
		Version:         1,
		Name:            cmp(opts.Name, DefaultName),
		KeyType:         kt,
		Intermediate:    opts.Intermediate,
		URL:             opts.URL,
		MaxValidity:     Duration(cmp(opts.MaxValidity, DefaultMaxValidity)),
		CRLValidity:     Duration(cmp(opts.CRLValidity, DefaultCRLValidity)),
		OCSPValidity:    Duration(cmp(opts.OCSPValidity, DefaultOCSPValidity)),
		NameConstraints: opts.NameConstraints,
		Store:           opts.Store,
		Profiles:        opts.Profiles,
	}
	if rootURI != nil {
		s.Keys = &KeyRefs{Root: rootURI.String()}
		if s.Intermediate {
			s.Keys.Intermediate = interURI.String()
		}
	}
	if s.NameConstraints.empty() {
		s.NameConstraints = nil
	}
	rootLife := cmp(opts.RootValidity, DefaultRootValidity)
	interLife := cmp(opts.IntermediateValidity, DefaultIntermediateLife)
	if s.MaxValidity <= 0 || s.CRLValidity <= 0 || s.OCSPValidity <= 0 || rootLife <= 0 || interLife <= 0 {
		return nil, errors.New("init CA: validities must be positive")
	}
	if err := checkProfileLimits(s); err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	if err := prepareDir(dir); err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	created, err := createDir(dir)
	if err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	defer func() {
		if err != nil {
			removeCA(dir, created)
		}
	}()

	ca = &CA{Now: opts.Now, dir: dir, settings: s}
	now := ca.now()
	rootKey, err := generateKey(kt, rootURI)
	if err != nil {
		return nil, fmt.Errorf("init CA: generate root key: %w", err)
	}
	// Token keys: the root is closed once the CA is made (it signs nothing
	// else here); every key is deleted from the token if Init fails.
	defer func() { closeKey(rootKey, err != nil) }()
	rootTmpl, err := caTemplate(s, pkix.Name{CommonName: s.Name}, now, rootLife, !s.Intermediate)
	if err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	if s.Intermediate {
		rootTmpl.MaxPathLen = 1
	}
	ca.root, err = createCert(rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("init CA: create root: %w", err)
	}
	files := []File{{Path: filepath.Join(dir, RootCertFile), Data: CertsPEM(ca.root), Perm: 0o644}}
	if rootURI == nil {
		rootKeyPEM, err := MarshalKeyPEM(rootKey, opts.Passphrase)
		if err != nil {
			return nil, fmt.Errorf("init CA: %w", err)
		}
		files = append(files, File{Path: filepath.Join(dir, RootKeyFile), Data: rootKeyPEM, Perm: 0o600})
	}
	ca.issuer = ca.root
	if !s.Intermediate && rootURI != nil {
		// The root signs leaves: keep a session of its own open for them.
		if err := ca.openTokenKey(); err != nil {
			return nil, fmt.Errorf("init CA: %w", err)
		}
		defer func() {
			if err != nil {
				closeKey(ca.key, false)
			}
		}()
	} else if !s.Intermediate {
		ca.key = rootKey
	}
	if s.Intermediate {
		ikey, gerr := generateKey(kt, interURI)
		if gerr != nil {
			return nil, fmt.Errorf("init CA: generate intermediate key: %w", gerr)
		}
		// err here is Init's result (not a shadow): the key is deleted from
		// the token when Init fails.
		defer func() {
			if err != nil {
				closeKey(ikey, true)
			}
		}()
		tmpl, err := caTemplate(s, pkix.Name{CommonName: s.Name + " Intermediate"}, now, interLife, true)
		if err != nil {
			return nil, fmt.Errorf("init CA: %w", err)
		}
		if u := s.RootCRLURL(); u != "" {
			tmpl.CRLDistributionPoints = []string{u}
		}
		inter, err := createCert(tmpl, ca.root, ikey.Public(), rootKey)
		if err != nil {
			return nil, fmt.Errorf("init CA: create intermediate: %w", err)
		}
		files = append(files, File{Path: filepath.Join(dir, IntermediateCertFile), Data: CertsPEM(inter), Perm: 0o644})
		if interURI == nil {
			ikeyPEM, err := MarshalKeyPEM(ikey, opts.Passphrase)
			if err != nil {
				return nil, fmt.Errorf("init CA: %w", err)
			}
			files = append(files, File{Path: filepath.Join(dir, IntermediateKeyFile), Data: ikeyPEM, Perm: 0o600})
		}
		ca.issuer, ca.chain, ca.key = inter, []*x509.Certificate{inter}, ikey
	}
	if err := WriteFiles(files...); err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	if ca.store, err = openStore(dir, s); err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	if err := initStore(ca.store, dir, s); err != nil {
		ca.store.Close()
		return nil, fmt.Errorf("init CA: %w", err)
	}
	defer func() {
		if err != nil {
			ca.store.Close()
		}
	}()
	if _, err := ca.UpdateCRL(context.Background()); err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	if s.Intermediate {
		if _, err := writeRootCRL(dir, ca.root, rootKey, now, nil); err != nil {
			return nil, fmt.Errorf("init CA: root CRL: %w", err)
		}
	}
	// The settings file goes last: its presence is what makes DIR a CA.
	b, err := s.marshal()
	if err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	if err := WriteFiles(File{Path: filepath.Join(dir, SettingsFile), Data: b, Perm: 0o644}); err != nil {
		return nil, fmt.Errorf("init CA: %w", err)
	}
	return ca, nil
}

func cmp[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// caFiles are the files Init creates; prepareDir refuses a directory
// holding any of them, and removeCA deletes them on failure.
var caFiles = []string{
	RootCertFile, RootKeyFile, IntermediateCertFile, IntermediateKeyFile, SettingsFile,
	InventoryFile, InventoryFile + "-wal", InventoryFile + "-shm", InventoryFile + "-journal", CRLFile,
}

func prepareDir(dir string) error {
	for _, f := range caFiles {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("%s already holds a CA (%s exists); choose another --dir", dir, f)
		}
	}
	return nil
}

// createDir creates dir (0700) if needed and reports whether it did.
func createDir(dir string) (bool, error) {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return false, fmt.Errorf("%s is not a directory", dir)
		}
		return false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	return true, nil
}

func removeCA(dir string, created bool) {
	for _, f := range caFiles {
		os.Remove(filepath.Join(dir, f))
	}
	if created {
		os.Remove(dir)
	}
}

func openStore(dir string, s Settings) (store.Store, error) {
	if s.Store != "" {
		return store.OpenPostgres(context.Background(), s.Store)
	}
	path := filepath.Join(dir, InventoryFile)
	return store.OpenSQLite(context.Background(), path)
}

// Open opens the CA in dir and decrypts its signing key (the
// intermediate's when there is one) with passphrase. It fails with ErrNotCA
// for a directory that is not a CA and ErrWrongPassphrase when the
// passphrase does not open the key.
func Open(dir string, passphrase []byte) (*CA, error) {
	ca, err := OpenPublic(dir)
	if err != nil {
		return nil, err
	}
	if ca.settings.InToken() {
		if err := ca.openTokenKey(); err != nil {
			ca.Close()
			return nil, err
		}
		return ca, nil
	}
	keyFile := RootKeyFile
	if ca.settings.Intermediate {
		keyFile = IntermediateKeyFile
	}
	path := filepath.Join(dir, keyFile)
	b, err := os.ReadFile(path)
	if err == nil && !bytes.Contains(b, []byte("-----BEGIN "+pemEncryptedPrivateKey+"-----")) {
		// CA keys are never stored in clear; one that is was not put
		// there by gatehouse.
		err = errors.New("not an encrypted PKCS#8 key (" + pemEncryptedPrivateKey + ")")
	}
	if err == nil {
		ca.key, err = ParseKeyPEM(b, passphrase)
	}
	if err == nil && !samePublicKey(ca.key.Public(), ca.issuer.PublicKey) {
		err = fmt.Errorf("key does not match %s", ca.issuer.Subject.CommonName)
	}
	if err != nil {
		ca.Close()
		return nil, fmt.Errorf("open CA key %s: %w", path, err)
	}
	return ca, nil
}

// OpenPublic opens the CA in dir without its key: enough to list the
// inventory and read the certificates, not to sign (ErrNoKey).
func OpenPublic(dir string) (*CA, error) {
	s, err := loadSettings(dir)
	if err != nil {
		return nil, fmt.Errorf("open CA: %w", err)
	}
	ca := &CA{dir: dir, settings: s}
	if ca.root, err = readCert(filepath.Join(dir, RootCertFile)); err != nil {
		return nil, fmt.Errorf("open CA: %w", err)
	}
	ca.issuer = ca.root
	if s.Intermediate {
		inter, err := readCert(filepath.Join(dir, IntermediateCertFile))
		if err != nil {
			return nil, fmt.Errorf("open CA: %w", err)
		}
		if err := inter.CheckSignatureFrom(ca.root); err != nil {
			return nil, fmt.Errorf("open CA: %s is not signed by %s: %w", IntermediateCertFile, RootCertFile, err)
		}
		ca.issuer, ca.chain = inter, []*x509.Certificate{inter}
	}
	if _, err := os.Stat(filepath.Join(dir, InventoryFile)); err != nil && s.Store == "" {
		return nil, fmt.Errorf("open CA: inventory: %w", err)
	}
	if ca.store, err = openStore(dir, s); err != nil {
		return nil, fmt.Errorf("open CA: %w", err)
	}
	return ca, nil
}

// Close closes the inventory and releases a token key.
func (ca *CA) Close() error {
	if ca.key != nil {
		closeKey(ca.key, false)
	}
	return ca.store.Close()
}

// Dir is the CA's directory.
func (ca *CA) Dir() string { return ca.dir }

// Settings returns the CA's settings.
func (ca *CA) Settings() Settings { return ca.settings }

// Root is the root certificate, the trust anchor users distribute.
func (ca *CA) Root() *x509.Certificate { return ca.root }

// Issuer is the certificate that signs leaves, CRLs and OCSP responses:
// the intermediate if there is one, else the root.
func (ca *CA) Issuer() *x509.Certificate { return ca.issuer }

// Store is the CA's inventory.
func (ca *CA) Store() store.Store { return ca.store }

func (ca *CA) now() time.Time {
	if ca.Now != nil {
		return ca.Now()
	}
	return time.Now()
}

func (ca *CA) signer() (crypto.Signer, error) {
	if ca.key == nil {
		return nil, ErrNoKey
	}
	return ca.key, nil
}

// randomSerial returns a random positive serial of up to 128 bits.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("generate serial: %w", err)
		}
		// Rule out tiny serials, which would look sequential.
		if n.BitLen() > 64 {
			return n, nil
		}
	}
}

// subjectKeyID is the RFC 7093 method 1 key identifier: the leftmost 160
// bits of the SHA-256 of the subjectPublicKey bits.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20], nil
}

func caTemplate(s Settings, name pkix.Name, now time.Time, life time.Duration, signsLeaves bool) (*x509.Certificate, error) {
	sn, err := randomSerial()
	if err != nil {
		return nil, err
	}
	t := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               name,
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(life),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        signsLeaves,
	}
	if nc := s.NameConstraints; !nc.empty() {
		t.PermittedDNSDomainsCritical = true
		t.PermittedDNSDomains, t.ExcludedDNSDomains = nc.PermittedDNS, nc.ExcludedDNS
		if t.PermittedIPRanges, err = parseCIDRs(nc.PermittedIPs); err != nil {
			return nil, err
		}
		if t.ExcludedIPRanges, err = parseCIDRs(nc.ExcludedIPs); err != nil {
			return nil, err
		}
		t.PermittedEmailAddresses, t.PermittedURIDomains = nc.PermittedEmails, nc.PermittedURIDomains
	}
	return t, nil
}

// createCert signs tmpl with parent's key and parses the result.
func createCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) (*x509.Certificate, error) {
	if tmpl.SubjectKeyId == nil {
		id, err := subjectKeyID(pub)
		if err != nil {
			return nil, err
		}
		tmpl.SubjectKeyId = id
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// CertsPEM is certs PEM encoded, one CERTIFICATE block each, in order.
func CertsPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
