package revocation

import (
	"math/big"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/serial"
)

// SourceStatus is the state of one CRL source, for metrics and status
// pages.
type SourceStatus struct {
	// Source is the file path or URL as configured.
	Source string
	// Loaded is false until a CRL from the source is held; Issuer to
	// Revoked are zero then.
	Loaded     bool
	Issuer     string // the CRL issuer's distinguished name
	IssuerCN   string
	Number     *big.Int // nil if the CRL has no CRL number
	ThisUpdate time.Time
	NextUpdate time.Time
	// Revoked is the number of serials listed, -1 until the CRL's entries
	// are indexed (after its signature verified against the issuer).
	Revoked int
	// LastSuccess is when the source was last read and its content
	// accepted or found unchanged (zero: never). LastError and
	// LastErrorAt describe the last failure; Errors counts failures.
	LastSuccess time.Time
	LastError   string
	LastErrorAt time.Time
	Errors      uint64
}

// Status returns the state of every CRL source, in configuration order.
// It only reads: safe to call at any time, from any goroutine.
func (c *Checker) Status() []SourceStatus {
	out := make([]SourceStatus, 0, len(c.sources))
	for _, s := range c.sources {
		st := SourceStatus{Source: s.name}
		s.stats.read(&st)
		if d := s.cur.Load(); d != nil {
			st.Loaded = true
			st.Issuer = d.issuerName
			if d.header != nil {
				st.IssuerCN = d.header.Issuer.CommonName
			}
			st.Number = d.number
			st.ThisUpdate, st.NextUpdate = d.thisUpdate, d.nextUpdate
			st.Revoked = -1
			if m := d.revoked.Load(); m != nil {
				st.Revoked = len(*m)
			}
		}
		out = append(out, st)
	}
	return out
}

// Ready reports whether every CRL source holds a CRL within its
// nextUpdate at now: what a readiness probe needs before traffic.
func (c *Checker) Ready() bool {
	now := c.now()
	for _, s := range c.sources {
		d := s.cur.Load()
		if d == nil || !now.Before(d.nextUpdate) {
			return false
		}
	}
	return true
}

// fetchStats counts a source's reads; written by the refresher, read by
// Status.
type fetchStats struct {
	mu          sync.Mutex
	lastSuccess time.Time
	lastError   string
	lastErrorAt time.Time
	errors      uint64
}

func (f *fetchStats) ok(now time.Time) {
	f.mu.Lock()
	f.lastSuccess = now
	f.mu.Unlock()
}

func (f *fetchStats) failed(now time.Time, err error) {
	f.mu.Lock()
	f.lastError, f.lastErrorAt = err.Error(), now
	f.errors++
	f.mu.Unlock()
}

func (f *fetchStats) read(st *SourceStatus) {
	f.mu.Lock()
	st.LastSuccess, st.LastError, st.LastErrorAt, st.Errors = f.lastSuccess, f.lastError, f.lastErrorAt, f.errors
	f.mu.Unlock()
}

// StapleStatus is the OCSP staple state of one served certificate.
type StapleStatus struct {
	// Index is the certificate's position in the served list.
	Index     int
	Subject   string
	SubjectCN string
	Serial    string
	// Responder is "" when the certificate cannot be stapled (no
	// responder named, or no issuer at hand); the rest is zero then.
	Responder string
	// Present is true while a good response within its nextUpdate is
	// stapled.
	Present    bool
	ThisUpdate time.Time
	NextUpdate time.Time
}

// Status returns the staple state of every served certificate that has a
// leaf, in order. It only reads.
func (s *Stapler) Status() []StapleStatus {
	var out []StapleStatus
	for i, it := range s.items {
		if it.leaf == nil {
			continue
		}
		st := StapleStatus{Index: i, Subject: it.leaf.Subject.String(), SubjectCN: it.leaf.Subject.CommonName,
			Serial: serial.Format(it.leaf.SerialNumber), Responder: it.responder}
		if cur := s.current(i); cur != nil {
			st.Present, st.ThisUpdate, st.NextUpdate = true, cur.thisUpdate, cur.nextUpdate
		}
		out = append(out, st)
	}
	return out
}
