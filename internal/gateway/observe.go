package gateway

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/internal/certsource"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/revocation"
	"github.com/gatehouse/gatehouse/internal/telemetry/metrics"
	"github.com/gatehouse/gatehouse/internal/tlsconf"
)

// observer is the gateway's observability state: metrics, the inventory
// of the certificates in force, and the record of reloads. Everything the
// admin endpoints show comes from here.
type observer struct {
	reg *prometheus.Registry
	m   *metrics.Metrics
	log *slog.Logger
	now func() time.Time
	// certs are the certificates of the snapshot in force, computed at
	// each swap.
	certs atomic.Pointer[[]metrics.Certificate]

	mu     sync.Mutex
	reload reloadRecord
}

// reloadRecord is what /status says about configuration loads.
type reloadRecord struct {
	// LoadedAt is when the configuration in force was loaded.
	LoadedAt time.Time `json:"loaded_at"`
	// LastAttempt, LastResult (success or failure) and LastError describe
	// the latest load or reload.
	LastAttempt time.Time `json:"last_attempt"`
	LastResult  string    `json:"last_result"`
	LastError   string    `json:"last_error,omitempty"`
	// Refused counts the refused reloads since the last good one;
	// RefusedSince is the first of them.
	Refused      int       `json:"refused"`
	RefusedSince time.Time `json:"refused_since,omitzero"`
}

func newObserver(reg *prometheus.Registry, log *slog.Logger, now func() time.Time) *observer {
	if reg == nil {
		reg = prometheus.NewRegistry()
		metrics.RegisterRuntime(reg)
	}
	o := &observer{reg: reg, m: metrics.New(reg), log: log, now: now}
	return o
}

// bindRoutes gives each route of snap its metrics, resolved once here so
// that a request counts with a few atomic adds. Call it before snap is
// published.
func (o *observer) bindRoutes(snap *snapshot) {
	for _, r := range snap.policy.Routes {
		r.Metrics = o.m.Route(r.Name)
	}
}

// started records the first snapshot.
func (o *observer) started(s *Server, snap *snapshot) {
	now := o.now()
	o.setCertificates(snap)
	o.m.Started(now)
	o.m.SetInventory(s.inventory)
	o.mu.Lock()
	o.reload = reloadRecord{LoadedAt: now, LastAttempt: now, LastResult: "success"}
	o.mu.Unlock()
}

// swapped records a successful reload from old to snap and logs what
// changed.
func (o *observer) swapped(old, snap *snapshot) {
	now := o.now()
	prev := o.certs.Load()
	o.setCertificates(snap)
	o.m.ReloadSucceeded(now)
	o.mu.Lock()
	r := o.reload
	o.reload = reloadRecord{LoadedAt: now, LastAttempt: now, LastResult: "success"}
	o.mu.Unlock()
	if r.Refused > 0 {
		o.log.Info("configuration fixed: reload accepted after refused attempts",
			"refused", r.Refused, "refused_since", r.RefusedSince, "last_error", r.LastError)
	}
	logRouteChanges(o.log, old, snap)
	if prev != nil {
		logCertificateChanges(o.log, *prev, *o.certs.Load())
	}
}

// refused records a reload that was refused.
func (o *observer) refused(err error) {
	now := o.now()
	o.m.ReloadFailed()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.reload.Refused == 0 {
		o.reload.RefusedSince = now
	}
	o.reload.Refused++
	o.reload.LastAttempt, o.reload.LastResult, o.reload.LastError = now, "failure", err.Error()
}

func (o *observer) reloadStatus() reloadRecord {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.reload
}

// handshake counts a handshake that passed the certificate checks.
func (o *observer) handshake(cs tls.ConnectionState) {
	o.m.Handshake(cs.Version, cs.CipherSuite, cs.CurveID, cs.DidResume)
}

// handshakeFailed counts a handshake refused by the certificate checks.
func (o *observer) handshakeFailed(err error) { o.m.HandshakeFailed(HandshakeFailureReason(err)) }

// HandshakeFailureReason classifies a refusal of VerifyConnection (the
// verifier's or the revocation checker's error) for metrics.
func HandshakeFailureReason(err error) metrics.HandshakeFailure {
	var inv x509.CertificateInvalidError
	var ua x509.UnknownAuthorityError
	switch {
	case errors.Is(err, tlsconf.ErrNoCertificate):
		return metrics.FailNoCertificate
	case errors.Is(err, tlsconf.ErrMissingClientAuth):
		return metrics.FailMissingClientAuth
	case errors.Is(err, revocation.ErrRevoked):
		return metrics.FailRevoked
	case errors.Is(err, revocation.ErrUnavailable):
		return metrics.FailRevocationUnknown
	case errors.As(err, &ua):
		return metrics.FailUnknownCA
	case errors.As(err, &inv):
		switch inv.Reason {
		case x509.Expired:
			return metrics.FailExpired
		case x509.IncompatibleUsage:
			return metrics.FailMissingClientAuth
		}
	}
	return metrics.FailPolicy
}

// Registry is the registry the gateway's metrics are on (Options.Registry,
// or its own).
func (s *Server) Registry() *prometheus.Registry { return s.obs.reg }

// Metrics is the gateway's metrics, for the request path to count on.
func (s *Server) Metrics() *metrics.Metrics { return s.obs.m }

// Certificates lists every certificate the configuration in force serves,
// trusts or uses, soonest expiry first.
func (s *Server) Certificates() []metrics.Certificate {
	if p := s.obs.certs.Load(); p != nil {
		return slices.Clone(*p)
	}
	return nil
}

func (o *observer) setCertificates(snap *snapshot) {
	certs := snapshotCertificates(snap)
	o.certs.Store(&certs)
}

// snapshotCertificates lists the served certificates (from what was
// loaded) and the trusted and upstream ones (read again from their files:
// provisioning merged them into pools that do not say which file held
// which).
func snapshotCertificates(snap *snapshot) []metrics.Certificate {
	f := snap.file
	c := &f.Config
	var out []metrics.Certificate
	for i, tc := range snap.tls.Certificates {
		file := ""
		if i < len(c.ServerTLS.Certificates) {
			file = f.Resolve(c.ServerTLS.Certificates[i].Cert)
		}
		for j, der := range tc.Certificate {
			x, err := x509.ParseCertificate(der)
			if err != nil {
				continue
			}
			role := metrics.RoleServer
			if j > 0 {
				role = metrics.RoleServerChain
			}
			out = append(out, metrics.CertificateOf(role, file, x))
		}
	}
	add := func(role, path string) {
		if path == "" {
			return
		}
		p := f.Resolve(path)
		certs, err := certsource.LoadCerts(p)
		if err != nil {
			return // loaded at provisioning; changed since: the next reload says so
		}
		for _, x := range certs {
			out = append(out, metrics.CertificateOf(role, p, x))
		}
	}
	if c.ClientAuth.Mode != config.ModeNone {
		for _, p := range c.ClientAuth.TrustedCAs {
			add(metrics.RoleClientCA, p)
		}
	}
	for _, r := range c.Routes {
		if u := r.UpstreamTLS; u != nil {
			add(metrics.RoleUpstreamClient, u.Cert)
			add(metrics.RoleUpstreamCA, u.CA)
		}
	}
	slices.SortStableFunc(out, func(a, b metrics.Certificate) int {
		return cmp.Or(a.NotAfter.Compare(b.NotAfter), cmp.Compare(a.Role, b.Role), cmp.Compare(a.File, b.File))
	})
	return slices.CompactFunc(out, func(a, b metrics.Certificate) bool { return a == b })
}

// inventory is what a scrape exports: certificates, CRLs, staples.
func (s *Server) inventory() metrics.Inventory {
	inv := metrics.Inventory{Certificates: s.Certificates(), Now: s.now()}
	snap := s.snap.Load()
	if snap == nil {
		return inv
	}
	if snap.revocation != nil {
		for _, st := range snap.revocation.Status() {
			inv.CRLs = append(inv.CRLs, metrics.CRL{
				Source: st.Source, Loaded: st.Loaded, IssuerCN: st.IssuerCN, Number: st.Number,
				ThisUpdate: st.ThisUpdate, NextUpdate: st.NextUpdate, Revoked: st.Revoked,
				LastSuccess: st.LastSuccess, LastError: st.LastError, LastErrorAt: st.LastErrorAt, FetchErrors: st.Errors,
			})
		}
	}
	if snap.stapler != nil {
		for _, st := range snap.stapler.Status() {
			if st.Responder == "" {
				continue // cannot be stapled: nothing to watch
			}
			inv.Staples = append(inv.Staples, metrics.Staple{
				SubjectCN: st.SubjectCN, Serial: st.Serial, Responder: st.Responder, Present: st.Present,
				ThisUpdate: st.ThisUpdate, NextUpdate: st.NextUpdate,
			})
		}
	}
	return inv
}

// ready reports whether the gateway can serve: a configuration with its
// certificates and CAs is loaded (provisioning guarantees both), and, when
// unavailable revocation data means refusal, every CRL is current.
func (s *Server) ready() (bool, string) {
	snap := s.snap.Load()
	if snap == nil {
		return false, "no configuration loaded"
	}
	if snap.revocation != nil && snap.file.Config.ClientAuth.Revocation.Unavailable != string(revocation.UnavailableAllow) &&
		!snap.revocation.Ready() {
		return false, "a CRL is missing or past its nextUpdate (client_auth.revocation.unavailable: reject)"
	}
	return true, ""
}

// logRouteChanges logs the routes a reload added, removed or changed
// (host, path or backend), as configured.
func logRouteChanges(log *slog.Logger, old, snap *snapshot) {
	if old == nil {
		return
	}
	before := map[string]config.Route{}
	for _, r := range old.file.Config.Routes {
		before[r.Name] = r
	}
	for _, r := range snap.file.Config.Routes {
		o, ok := before[r.Name]
		delete(before, r.Name)
		switch {
		case !ok:
			log.Info("reload: route added", "route", r.Name, "host", r.Host, "path", r.Path, "backend", r.Backend)
		case o.Host != r.Host || o.Path != r.Path || o.Backend != r.Backend:
			log.Info("reload: route changed", "route", r.Name, "host", o.Host+" -> "+r.Host, "path", o.Path+" -> "+r.Path,
				"backend", o.Backend+" -> "+r.Backend)
		}
	}
	for name, r := range before {
		log.Info("reload: route removed", "route", name, "host", r.Host, "path", r.Path)
	}
}

// logCertificateChanges logs, per role and file, the certificates that
// appeared or went, with serial and expiry before and after.
func logCertificateChanges(log *slog.Logger, before, after []metrics.Certificate) {
	type slot struct{ role, file string }
	group := func(cs []metrics.Certificate) map[slot][]metrics.Certificate {
		m := map[slot][]metrics.Certificate{}
		for _, c := range cs {
			k := slot{c.Role, c.File}
			m[k] = append(m[k], c)
		}
		return m
	}
	b, a := group(before), group(after)
	same := func(x, y []metrics.Certificate) bool {
		return slices.EqualFunc(x, y, func(p, q metrics.Certificate) bool { return p.Serial == q.Serial })
	}
	desc := func(cs []metrics.Certificate) (serials, notAfter []string) {
		for _, c := range cs {
			serials = append(serials, c.Serial)
			notAfter = append(notAfter, c.NotAfter.UTC().Format(time.RFC3339))
		}
		return
	}
	for k, ac := range a {
		bc := b[k]
		if same(bc, ac) {
			continue
		}
		bs, bn := desc(bc)
		as, an := desc(ac)
		log.Info("reload: certificate changed", "role", k.role, "file", k.file,
			"serial_before", bs, "not_after_before", bn, "serial_after", as, "not_after_after", an)
	}
	for k, bc := range b {
		if _, ok := a[k]; !ok {
			bs, bn := desc(bc)
			log.Info("reload: certificate no longer in use", "role", k.role, "file", k.file, "serial", bs, "not_after", bn)
		}
	}
}
