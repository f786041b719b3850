package metrics

import (
	"crypto/x509"
	"math/big"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/internal/serial"
)

// Certificate roles, the role label of the certificate expiry gauges.
const (
	RoleServer         = "server"          // a certificate the gateway serves (the leaf)
	RoleServerChain    = "server_chain"    // an intermediate served with it
	RoleClientCA       = "client_ca"       // a CA trusted for client certificates
	RoleUpstreamClient = "upstream_client" // the gateway's client certificate towards a backend
	RoleUpstreamCA     = "upstream_ca"     // a CA trusted for a backend's certificate
	RoleCARoot         = "ca_root"         // gatehouse ca: the root
	RoleCAIntermediate = "ca_intermediate" // gatehouse ca: the issuing intermediate
)

// Certificate is one certificate the process serves, trusts or uses. Its
// labels are bounded by the configuration, not by clients.
type Certificate struct {
	Role      string    `json:"role"`
	File      string    `json:"file"`
	Subject   string    `json:"subject"`
	SubjectCN string    `json:"subject_cn"`
	Serial    string    `json:"serial"`
	IssuerCN  string    `json:"issuer_cn"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
}

// CertificateOf describes c in role, loaded from file.
func CertificateOf(role, file string, c *x509.Certificate) Certificate {
	return Certificate{
		Role:      role,
		File:      file,
		Subject:   c.Subject.String(),
		SubjectCN: c.Subject.CommonName,
		Serial:    serial.Format(c.SerialNumber),
		IssuerCN:  c.Issuer.CommonName,
		NotBefore: c.NotBefore,
		NotAfter:  c.NotAfter,
	}
}

// CRL is the state of one CRL source.
type CRL struct {
	Source string `json:"source"`
	// Loaded is false until a CRL from the source is held; the fields
	// from IssuerCN to Revoked are then zero.
	Loaded     bool      `json:"loaded"`
	IssuerCN   string    `json:"issuer_cn,omitempty"`
	Number     *big.Int  `json:"number,omitempty"`
	ThisUpdate time.Time `json:"this_update"`
	NextUpdate time.Time `json:"next_update"`
	// Revoked is the number of serials listed; -1 while unknown (the
	// entries are indexed once the signature verified).
	Revoked int `json:"revoked"`
	// LastSuccess is when the source was last read successfully (zero:
	// never); LastError and LastErrorAt describe the last failed read.
	LastSuccess time.Time `json:"last_success"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at"`
	FetchErrors uint64    `json:"fetch_errors"`
}

// Staple is the OCSP staple state of one served certificate that names a
// responder.
type Staple struct {
	SubjectCN  string    `json:"subject_cn"`
	Serial     string    `json:"serial"`
	Responder  string    `json:"responder"`
	Present    bool      `json:"present"`
	ThisUpdate time.Time `json:"this_update"`
	NextUpdate time.Time `json:"next_update"`
}

// Inventory is what the process holds now: certificates, CRLs, staples.
type Inventory struct {
	Certificates []Certificate
	CRLs         []CRL
	Staples      []Staple
	// Now is when the inventory was taken (staple ages are measured from
	// it). If zero, the scrape time.
	Now time.Time
}

func desc(name string) *prometheus.Desc {
	s := spec(name)
	return prometheus.NewDesc(s.Name, s.Help, s.Labels, nil)
}

// inventoryCollector exports an Inventory read at scrape time.
type inventoryCollector struct {
	f atomic.Pointer[func() Inventory]

	notAfter, notBefore                     *prometheus.Desc
	crlThis, crlNext, crlNumber, crlRevoked *prometheus.Desc
	crlFetchOK, crlFetchErrors              *prometheus.Desc
	stapleNext, stapleAge, staplePresent    *prometheus.Desc
}

func newInventoryCollector() *inventoryCollector {
	return &inventoryCollector{
		notAfter: desc(nameCertNotAfter), notBefore: desc(nameCertNotBefore),
		crlThis: desc(nameCRLThis), crlNext: desc(nameCRLNext), crlNumber: desc(nameCRLNumber), crlRevoked: desc(nameCRLRevoked),
		crlFetchOK: desc(nameCRLFetchOK), crlFetchErrors: desc(nameCRLFetchErrors),
		stapleNext: desc(nameStapleNext), stapleAge: desc(nameStapleAge), staplePresent: desc(nameStaplePresent),
	}
}

func (c *inventoryCollector) set(f func() Inventory) { c.f.Store(&f) }

func (c *inventoryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.notAfter, c.notBefore, c.crlThis, c.crlNext, c.crlNumber, c.crlRevoked,
		c.crlFetchOK, c.crlFetchErrors, c.stapleNext, c.stapleAge, c.staplePresent} {
		ch <- d
	}
}

func (c *inventoryCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.f.Load()
	if f == nil {
		return
	}
	inv := (*f)()
	now := inv.Now
	if now.IsZero() {
		now = time.Now()
	}
	collectCertificates(ch, c.notAfter, c.notBefore, inv.Certificates)
	seen := map[string]bool{}
	for _, r := range inv.CRLs {
		if seen[r.Source] {
			continue
		}
		seen[r.Source] = true
		ch <- prometheus.MustNewConstMetric(c.crlFetchOK, prometheus.GaugeValue, unix(r.LastSuccess), r.Source)
		ch <- prometheus.MustNewConstMetric(c.crlFetchErrors, prometheus.CounterValue, float64(r.FetchErrors), r.Source)
		if !r.Loaded {
			continue
		}
		number := -1.0
		if r.Number != nil {
			number, _ = new(big.Float).SetInt(r.Number).Float64()
		}
		ch <- prometheus.MustNewConstMetric(c.crlThis, prometheus.GaugeValue, unix(r.ThisUpdate), r.Source, r.IssuerCN)
		ch <- prometheus.MustNewConstMetric(c.crlNext, prometheus.GaugeValue, unix(r.NextUpdate), r.Source, r.IssuerCN)
		ch <- prometheus.MustNewConstMetric(c.crlNumber, prometheus.GaugeValue, number, r.Source, r.IssuerCN)
		if r.Revoked >= 0 {
			ch <- prometheus.MustNewConstMetric(c.crlRevoked, prometheus.GaugeValue, float64(r.Revoked), r.Source, r.IssuerCN)
		}
	}
	seen = map[string]bool{}
	for _, s := range inv.Staples {
		k := s.SubjectCN + "\x00" + s.Serial
		if seen[k] {
			continue
		}
		seen[k] = true
		present := 0.0
		if s.Present {
			present = 1
			ch <- prometheus.MustNewConstMetric(c.stapleNext, prometheus.GaugeValue, unix(s.NextUpdate), s.SubjectCN, s.Serial)
			ch <- prometheus.MustNewConstMetric(c.stapleAge, prometheus.GaugeValue, now.Sub(s.ThisUpdate).Seconds(), s.SubjectCN, s.Serial)
		}
		ch <- prometheus.MustNewConstMetric(c.staplePresent, prometheus.GaugeValue, present, s.SubjectCN, s.Serial)
	}
}

// collectCertificates emits the expiry gauges of certs, once per distinct
// label set (the same CA file named twice is one series).
func collectCertificates(ch chan<- prometheus.Metric, notAfter, notBefore *prometheus.Desc, certs []Certificate) {
	seen := map[string]bool{}
	for _, c := range certs {
		lv := []string{c.Role, c.SubjectCN, c.Serial, c.IssuerCN, c.File}
		k := strings.Join(lv, "\x00")
		if seen[k] {
			continue
		}
		seen[k] = true
		ch <- prometheus.MustNewConstMetric(notAfter, prometheus.GaugeValue, unix(c.NotAfter), lv...)
		ch <- prometheus.MustNewConstMetric(notBefore, prometheus.GaugeValue, unix(c.NotBefore), lv...)
	}
}

// unix is t in seconds since the epoch, 0 for the zero time.
func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}
