package pki

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/units"
)

// Names of the files in a CA directory.
const (
	RootCertFile         = "ca.pem"
	RootKeyFile          = "ca-key.pem"
	IntermediateCertFile = "intermediate.pem"
	IntermediateKeyFile  = "intermediate-key.pem"
	SettingsFile         = "ca.json"
	InventoryFile        = "inventory.db"
	CRLFile              = "ca.crl"
)

// Defaults used when InitOptions leaves a field zero.
const (
	DefaultName             = "gatehouse CA"
	DefaultRootValidity     = 10 * units.Year
	DefaultIntermediateLife = 5 * units.Year
	DefaultMaxValidity      = 398 * units.Day
	DefaultCRLValidity      = 7 * units.Day
	DefaultOCSPValidity     = time.Hour
)

// ErrNotCA is returned by Open for a directory that holds no CA.
var ErrNotCA = errors.New("not a gatehouse CA directory")

// NameConstraints limits the names the CA may certify. They are written
// into the CA certificates (so verifiers enforce them too) and checked
// before anything is signed. The zero value allows every name.
type NameConstraints struct {
	// PermittedDNS and ExcludedDNS are DNS domains: "example.com" covers
	// example.com and every name below it.
	PermittedDNS []string `json:"permitted_dns,omitempty"`
	ExcludedDNS  []string `json:"excluded_dns,omitempty"`
	// PermittedIPs and ExcludedIPs are CIDR ranges.
	PermittedIPs []string `json:"permitted_ips,omitempty"`
	ExcludedIPs  []string `json:"excluded_ips,omitempty"`
	// PermittedEmails are addresses, hosts or ".domain" suffixes.
	PermittedEmails []string `json:"permitted_emails,omitempty"`
	// PermittedURIDomains are URI hosts (".example.com" covers subdomains).
	PermittedURIDomains []string `json:"permitted_uri_domains,omitempty"`
}

func (n *NameConstraints) empty() bool {
	return n == nil || len(n.PermittedDNS)+len(n.ExcludedDNS)+len(n.PermittedIPs)+len(n.ExcludedIPs)+
		len(n.PermittedEmails)+len(n.PermittedURIDomains) == 0
}

func parseCIDRs(list []string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, s := range list {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("name constraint %q: not a CIDR range like 10.0.0.0/8", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// Settings are a CA's stored settings (DIR/ca.json).
type Settings struct {
	Version int     `json:"version"`
	Name    string  `json:"name"`
	KeyType KeyType `json:"key_type"`
	// Intermediate is true when an intermediate signs the leaves.
	Intermediate bool `json:"intermediate"`
	// URL is the public base URL of `gatehouse ca serve`. If empty, leaves
	// carry no CRL Distribution Point and no OCSP address.
	URL string `json:"url,omitempty"`
	// MaxValidity bounds the validity of every leaf.
	MaxValidity Duration `json:"max_validity"`
	// CRLValidity is the time between a CRL's thisUpdate and nextUpdate.
	CRLValidity Duration `json:"crl_validity"`
	// OCSPValidity is the time between an OCSP response's thisUpdate and
	// nextUpdate.
	OCSPValidity Duration `json:"ocsp_validity"`
	// NameConstraints, if set, limits the names the CA certifies.
	NameConstraints *NameConstraints `json:"name_constraints,omitempty"`
	// Keys, if set, are the PKCS#11 URIs of the CA keys in a token; if
	// nil, the keys are the encrypted files in the CA directory.
	Keys *KeyRefs `json:"keys,omitempty"`
	// Store is the inventory's PostgreSQL URL (no password in it: see
	// store.OpenPostgres); if empty, the SQLite file DIR/inventory.db.
	Store string `json:"store,omitempty"`
	// Profiles sets per-profile validity limits ("client", "server"). A
	// profile without an entry uses DefaultLeafValidity and MaxValidity.
	Profiles map[Profile]ProfileLimits `json:"profiles,omitempty"`
}

// CRLURL is where the CA publishes its CRL, or "" without a URL.
func (s Settings) CRLURL() string {
	if s.URL == "" {
		return ""
	}
	return strings.TrimRight(s.URL, "/") + "/crl"
}

// OCSPURL is the CA's OCSP responder, or "" without a URL.
func (s Settings) OCSPURL() string {
	if s.URL == "" {
		return ""
	}
	return strings.TrimRight(s.URL, "/") + "/ocsp"
}

// Duration is a time.Duration stored in JSON as text like "90d".
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(units.FormatDuration(time.Duration(d))), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := units.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

func checkURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("CA URL %q: want an http(s) base URL like http://ca.example.com:8089", s)
	}
	return nil
}

func loadSettings(dir string) (Settings, error) {
	path := filepath.Join(dir, SettingsFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dir); serr != nil {
			return Settings{}, fmt.Errorf("%s: %w (%v)", dir, ErrNotCA, serr)
		}
		return Settings{}, fmt.Errorf("%s: %w (no %s; create one with 'gatehouse ca init')", dir, ErrNotCA, SettingsFile)
	}
	if err != nil {
		return Settings{}, fmt.Errorf("read %s: %w", path, err)
	}
	var s Settings
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Settings{}, fmt.Errorf("read %s: %w", path, err)
	}
	if s.Version != 1 {
		return Settings{}, fmt.Errorf("read %s: unsupported version %d", path, s.Version)
	}
	if err := checkProfileLimits(s); err != nil {
		return Settings{}, fmt.Errorf("read %s: %w", path, err)
	}
	return s, nil
}

func (s Settings) marshal() ([]byte, error) {
	// No HTML escaping: the keys' PKCS#11 URIs keep their '&' readable.
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("encode settings: %w", err)
	}
	return []byte(b.String()), nil
}
