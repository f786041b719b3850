package gateway

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/internal/certsource"
	"github.com/gatehouse/gatehouse/internal/telemetry/metrics"
)

// AdminHandler serves the admin endpoints:
//
//	/metrics  Prometheus exposition of the gateway's registry
//	/status   JSON: certificates served and trusted, CRL sources, staples, reloads
//	/healthz  liveness: the process answers
//	/readyz   readiness: certificates, CAs and required revocation data are loaded
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(s.obs.reg))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Cache-Control", "no-store")
		if ok, why := s.ready(); !ok {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n" + s.limitsReadyDetail()))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(s.Status())
	})
	return mux
}

// Status is the document /status serves.
type Status struct {
	Ready bool `json:"ready"`
	// NotReady says why Ready is false.
	NotReady     string              `json:"not_ready,omitempty"`
	Now          time.Time           `json:"now"`
	Config       ConfigStatus        `json:"config"`
	Certificates []CertificateStatus `json:"certificates"`
	CRLs         []metrics.CRL       `json:"crls"`
	Staples      []metrics.Staple    `json:"ocsp_staples"`
}

// ConfigStatus is the configuration in force and the reload record.
type ConfigStatus struct {
	File   string       `json:"file"`
	Routes int          `json:"routes"`
	Reload reloadRecord `json:"reload"`
}

// CertificateStatus is one certificate and the time it has left.
type CertificateStatus struct {
	metrics.Certificate
	ExpiresInSeconds int64 `json:"expires_in_seconds"`
	Expired          bool  `json:"expired"`
}

// Status returns what /status shows, soonest expiry first.
func (s *Server) Status() Status {
	inv := s.inventory()
	st := Status{Now: inv.Now.UTC(), CRLs: inv.CRLs, Staples: inv.Staples, Certificates: []CertificateStatus{}}
	st.Ready, st.NotReady = s.ready()
	if snap := s.snap.Load(); snap != nil {
		st.Config.File, st.Config.Routes = snap.file.Path, len(snap.policy.Routes)
	}
	st.Config.Reload = s.obs.reloadStatus()
	for _, c := range inv.Certificates {
		left := c.NotAfter.Sub(inv.Now)
		st.Certificates = append(st.Certificates, CertificateStatus{Certificate: c, ExpiresInSeconds: int64(left / time.Second), Expired: left <= 0})
	}
	if st.CRLs == nil {
		st.CRLs = []metrics.CRL{}
	}
	if st.Staples == nil {
		st.Staples = []metrics.Staple{}
	}
	return st
}

// ReloadRefused records a reload refused before it reached Reload (the
// configuration file did not load), for /status and the reload metrics.
func (s *Server) ReloadRefused(err error) { s.obs.refused(err) }

// AdminTLSConfig returns the admin listener's TLS configuration when
// admin.client_ca is set: the gateway's current certificates, TLS 1.2+,
// and a client certificate issued by a CA in clientCAFile required. It
// returns nil, nil when clientCAFile is empty (plain HTTP).
func (s *Server) AdminTLSConfig(clientCAFile string) (*tls.Config, error) {
	if clientCAFile == "" {
		return nil, nil
	}
	pool, _, err := certsource.LoadCAs([]string{clientCAFile})
	if err != nil {
		return nil, fmt.Errorf("admin.client_ca: %w", err)
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs:  pool,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			certs := s.snap.Load().tls.Certificates
			for i := range certs {
				if hello.SupportsCertificate(&certs[i]) == nil {
					return &certs[i], nil
				}
			}
			return &certs[0], nil
		},
	}, nil
}
