package metrics

import (
	"cmp"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultExpiringLimit bounds the per-certificate gauges of `ca serve`:
// the soonest-expiring certificates within the warning window, at most
// this many, so that a large inventory cannot flood Prometheus.
const DefaultExpiringLimit = 100

// CARecord is what the CA inventory summary needs of one issued
// certificate.
type CARecord struct {
	Profile   string
	SubjectCN string
	Serial    string
	NotAfter  time.Time
	Revoked   bool
	// SelfRenewing marks a certificate the CA renews by itself before it
	// expires (`ca serve`'s delegated OCSP signer): counted, but never
	// reported as expiring.
	SelfRenewing bool
}

// CACount is the number of certificates of one profile in one status.
type CACount struct {
	Profile string
	Status  string // valid, revoked or expired
	Count   int
}

// CAExpiring is a valid certificate within the warning window.
type CAExpiring struct {
	Profile   string
	SubjectCN string
	Serial    string
	NotAfter  time.Time
}

// CASnapshot is the CA's inventory as exported.
type CASnapshot struct {
	Counts []CACount
	// Soonest is the soonest expiry among each profile's valid certificates.
	Soonest  map[string]time.Time
	Expiring []CAExpiring
	// CRLNumber and CRLNextUpdate describe the CRL being published (zero:
	// none yet).
	CRLNumber     int64
	CRLNextUpdate time.Time
	// Certificates are the CA's own certificates (root, intermediate).
	Certificates []Certificate
}

// Summarize counts recs by profile and status at now and lists the valid
// ones expiring within window, soonest first, at most limit of them.
func Summarize(recs []CARecord, now time.Time, window time.Duration, limit int) CASnapshot {
	type key struct{ profile, status string }
	counts := map[key]int{}
	s := CASnapshot{Soonest: map[string]time.Time{}}
	for _, r := range recs {
		status := "valid"
		switch {
		case r.Revoked:
			status = "revoked"
		case !now.Before(r.NotAfter):
			status = "expired"
		}
		counts[key{r.Profile, status}]++
		if status != "valid" || r.SelfRenewing {
			continue
		}
		if t, ok := s.Soonest[r.Profile]; !ok || r.NotAfter.Before(t) {
			s.Soonest[r.Profile] = r.NotAfter
		}
		if r.NotAfter.Sub(now) <= window {
			s.Expiring = append(s.Expiring, CAExpiring{r.Profile, r.SubjectCN, r.Serial, r.NotAfter})
		}
	}
	for k, n := range counts {
		s.Counts = append(s.Counts, CACount{k.profile, k.status, n})
	}
	slices.SortFunc(s.Counts, func(a, b CACount) int {
		return cmp.Or(cmp.Compare(a.Profile, b.Profile), cmp.Compare(a.Status, b.Status))
	})
	slices.SortFunc(s.Expiring, func(a, b CAExpiring) int {
		return cmp.Or(a.NotAfter.Compare(b.NotAfter), cmp.Compare(a.Serial, b.Serial))
	})
	if len(s.Expiring) > limit {
		s.Expiring = s.Expiring[:limit]
	}
	return s
}

// CAInventory exports the last CASnapshot set. It is a
// prometheus.Collector; register it with the `ca serve` registry.
type CAInventory struct {
	snap atomic.Pointer[CASnapshot]

	counts, soonest, expiring, crlNext, crlNumber, notAfter, notBefore *prometheus.Desc
}

// NewCAInventory returns a collector that exports nothing until Set.
func NewCAInventory() *CAInventory {
	return &CAInventory{
		counts: desc(nameCACerts), soonest: desc(nameCASoonest), expiring: desc(nameCAExpiring),
		crlNext: desc(nameCACRLNext), crlNumber: desc(nameCACRLNumber),
		notAfter: desc(nameCertNotAfter), notBefore: desc(nameCertNotBefore),
	}
}

// Set replaces the exported snapshot.
func (c *CAInventory) Set(s CASnapshot) { c.snap.Store(&s) }

// Describe implements prometheus.Collector.
func (c *CAInventory) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.counts, c.soonest, c.expiring, c.crlNext, c.crlNumber, c.notAfter, c.notBefore} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *CAInventory) Collect(ch chan<- prometheus.Metric) {
	s := c.snap.Load()
	if s == nil {
		return
	}
	for _, n := range s.Counts {
		ch <- prometheus.MustNewConstMetric(c.counts, prometheus.GaugeValue, float64(n.Count), n.Profile, n.Status)
	}
	for p, t := range s.Soonest {
		ch <- prometheus.MustNewConstMetric(c.soonest, prometheus.GaugeValue, unix(t), p)
	}
	seen := map[string]bool{}
	for _, e := range s.Expiring {
		if seen[e.Serial] {
			continue
		}
		seen[e.Serial] = true
		ch <- prometheus.MustNewConstMetric(c.expiring, prometheus.GaugeValue, unix(e.NotAfter), e.Profile, e.SubjectCN, e.Serial)
	}
	if !s.CRLNextUpdate.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.crlNext, prometheus.GaugeValue, unix(s.CRLNextUpdate))
		ch <- prometheus.MustNewConstMetric(c.crlNumber, prometheus.GaugeValue, float64(s.CRLNumber))
	}
	collectCertificates(ch, c.notAfter, c.notBefore, s.Certificates)
}
