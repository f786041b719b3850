package enroll

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/pki"
	"github.com/gatehouse/gatehouse/internal/pki/store"
	"github.com/gatehouse/gatehouse/internal/serial"
	"github.com/gatehouse/gatehouse/internal/tlsconf"
	"github.com/gatehouse/gatehouse/internal/units"
)

// MaxGrace bounds Options.Grace: an expired certificate older than this
// never renews, however the CA is configured.
const MaxGrace = 7 * units.Day

// maxBody bounds a request body; a CSR is a few hundred bytes.
const maxBody = 64 << 10

// The enrollment API's paths (EST's are under estPrefix).
const (
	PathRequest = "/enroll/v1/request"
	PathRenew   = "/enroll/v1/renew"
)

// Options configures a Server. The zero value is usable.
type Options struct {
	// Grace lets a certificate that expired at most this long ago renew.
	// If zero, expired certificates never renew. At most MaxGrace.
	Grace time.Duration
	// RevokeSuperseded revokes the old certificate (reason superseded)
	// once its renewal is issued.
	RevokeSuperseded bool
	// Names are the DNS names and IP addresses of the HTTPS listener,
	// written into the server certificate the CA issues itself. If
	// empty, localhost and 127.0.0.1.
	Names []string
	// Now is the clock for expiry decisions. If nil, time.Now.
	Now func() time.Time
	// Log gets one line per refused request. If nil, slog.Default().
	Log *slog.Logger
	// Audit gets one JSON-ready record per certificate issued. If nil,
	// Log.
	Audit *slog.Logger
}

// Server is the enrollment API and EST over HTTPS. It issues its own
// listener certificate and renews it at two thirds of its lifetime.
type Server struct {
	ca     *pki.CA
	es     store.EnrollmentStore
	opts   Options
	log    *slog.Logger
	audit  *slog.Logger
	roots  *x509.CertPool
	inters *x509.CertPool

	cert atomic.Pointer[tls.Certificate]
}

// New prepares the enrollment API for ca, which must hold its key and
// whose inventory must support enrollment (store.EnrollmentStore).
func New(ca *pki.CA, opts Options) (*Server, error) {
	if opts.Grace < 0 || opts.Grace > MaxGrace {
		return nil, fmt.Errorf("enrollment API: renew grace %s must be between 0 and %s", units.FormatDuration(opts.Grace), units.FormatDuration(MaxGrace))
	}
	es, ok := ca.Store().(store.EnrollmentStore)
	if !ok {
		return nil, fmt.Errorf("enrollment API: the inventory (%T) cannot record token use", ca.Store())
	}
	if _, err := ca.TokenSigner(); err != nil {
		return nil, fmt.Errorf("enrollment API: %w", err)
	}
	if len(opts.Names) == 0 {
		opts.Names = []string{"localhost", "127.0.0.1"}
	}
	s := &Server{ca: ca, es: es, opts: opts, log: opts.Log, audit: opts.Audit,
		roots: x509.NewCertPool(), inters: x509.NewCertPool()}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.audit == nil {
		s.audit = s.log
	}
	s.roots.AddCert(ca.Root())
	for _, c := range ca.Chain() {
		s.inters.AddCert(c)
	}
	if err := s.issueListenerCert(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// issueListenerCert gives the HTTPS listener a fresh certificate from the
// CA itself; its key lives only in memory.
func (s *Server) issueListenerCert() error {
	req := pki.IssueRequest{Profile: pki.ProfileServer, CN: s.opts.Names[0]}
	for _, n := range s.opts.Names {
		if ip := net.ParseIP(n); ip != nil {
			req.IPs = append(req.IPs, ip)
		} else {
			req.DNS = append(req.DNS, n)
		}
	}
	def, _ := s.ca.ProfileValidity(pki.ProfileServer)
	req.Validity = min(def, 30*units.Day)
	iss, err := s.ca.Issue(req)
	if err != nil {
		return fmt.Errorf("enrollment API: listener certificate: %w", err)
	}
	tc := &tls.Certificate{PrivateKey: iss.Key, Leaf: iss.Cert()}
	for _, c := range iss.Chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	s.cert.Store(tc)
	s.log.Info("enrollment API: listener certificate issued", "serial", serial.Format(iss.Cert().SerialNumber), "names", s.opts.Names,
		"not_after", iss.Cert().NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// ListenerCert is the certificate the HTTPS listener serves now.
func (s *Server) ListenerCert() *x509.Certificate { return s.cert.Load().Leaf }

// TLSConfig is the listener's TLS configuration: gatehouse's versions,
// suites and groups, the CA-issued certificate, and a client certificate
// requested but not required (token holders have none). The handler
// verifies a presented certificate itself, so that it can apply the
// renewal grace window and the inventory's revocation status.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS12,
		CipherSuites:     tlsconf.Suites12,
		CurvePreferences: tlsconf.Groups,
		ClientAuth:       tls.RequestClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.cert.Load(), nil
		},
		// Each request is judged on the certificate presented in its own
		// handshake; enrollment is rare enough to need no resumption.
		SessionTicketsDisabled: true,
		NextProtos:             []string{"h2", "http/1.1"},
	}
}

// Serve serves the API over TLS on ln until ctx is done, and keeps the
// listener certificate fresh.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { s.keepListenerCert(ctx) })
	wg.Go(func() {
		<-ctx.Done()
		sctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		hs.Shutdown(sctx)
	})
	err := hs.ServeTLS(ln, "", "")
	cancel()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("enrollment API: %w", err)
}

func (s *Server) keepListenerCert(ctx context.Context) {
	for {
		c := s.cert.Load().Leaf
		wait := time.Until(c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) * 2 / 3))
		t := time.NewTimer(max(wait, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := s.issueListenerCert(); err != nil {
			s.log.Error("enrollment API: renewing the listener certificate failed; retrying in a minute", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Minute):
			}
		}
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Strict-Transport-Security", "max-age=63072000")
	var err error
	switch p := r.URL.Path; {
	case p == PathRequest:
		err = s.post(w, r, func(csrBody []byte) error { return s.apiRequest(w, r, csrBody) })
	case p == PathRenew:
		err = s.post(w, r, func(csrBody []byte) error { return s.apiRenew(w, r, csrBody) })
	case strings.HasPrefix(p, estPrefix):
		err = s.serveEST(w, r, strings.TrimPrefix(p, estPrefix))
	default:
		err = fail(http.StatusNotFound, "not found", nil)
	}
	if err != nil {
		ae := asAPIError(err)
		level := slog.LevelInfo
		if ae.status >= 500 {
			level = slog.LevelError
		}
		s.log.Log(r.Context(), level, "enrollment API: request refused", "path", r.URL.Path, "remote", r.RemoteAddr,
			"status", ae.status, "reason", ae.Error())
		if ae.status == http.StatusMethodNotAllowed {
			h.Set("Allow", "POST")
		}
		http.Error(w, ae.public, ae.status)
	}
}

// post reads a POST body and hands it to f.
func (s *Server) post(w http.ResponseWriter, r *http.Request, f func([]byte) error) error {
	if r.Method != http.MethodPost {
		return fail(http.StatusMethodNotAllowed, "method not allowed", nil)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return fail(http.StatusRequestEntityTooLarge, "request too large", err)
	}
	return f(body)
}

// apiRequest: first enrollment with a token. Body: a PEM or DER CSR.
// Answer: the chain in PEM.
func (s *Server) apiRequest(w http.ResponseWriter, r *http.Request, body []byte) error {
	token, ok := bearer(r)
	if !ok {
		return fail(http.StatusUnauthorized, "an enrollment token is required (Authorization: Bearer TOKEN)", nil)
	}
	csr, err := pki.ParseCSR(body)
	if err != nil {
		return fail(http.StatusBadRequest, "bad CSR", err)
	}
	iss, err := s.enrollWithToken(r, csr, token, "token")
	if err != nil {
		return err
	}
	writePEMChain(w, iss)
	return nil
}

// apiRenew: renewal authenticated by the current certificate.
func (s *Server) apiRenew(w http.ResponseWriter, r *http.Request, body []byte) error {
	csr, err := pki.ParseCSR(body)
	if err != nil {
		return fail(http.StatusBadRequest, "bad CSR", err)
	}
	iss, err := s.renew(r, csr, "renew")
	if err != nil {
		return err
	}
	writePEMChain(w, iss)
	return nil
}

func writePEMChain(w http.ResponseWriter, iss *pki.Issued) {
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.Write(iss.ChainPEM())
}

// bearer returns the token of "Authorization: Bearer T".
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// enrollWithToken issues the certificate a token grants for the key in
// csr, consuming the token.
func (s *Server) enrollWithToken(r *http.Request, csr *x509.CertificateRequest, token, method string) (*pki.Issued, error) {
	c, err := VerifyToken(s.ca, token, s.now())
	if errors.Is(err, ErrTokenExpired) {
		return nil, fail(http.StatusUnauthorized, "enrollment token expired: ask for a new one", err)
	}
	if err != nil {
		return nil, fail(http.StatusUnauthorized, "invalid enrollment token", err)
	}
	kr, err := c.keyRequest()
	if err != nil {
		return nil, fail(http.StatusUnauthorized, "invalid enrollment token", err)
	}
	if err := pki.CheckCSR(csr, kr.Profile); err != nil {
		return nil, fail(http.StatusBadRequest, "bad CSR", err)
	}
	if err := csrWithinToken(csr, kr); err != nil {
		return nil, fail(http.StatusForbidden, "the CSR asks for names the token does not grant", err)
	}
	// The token is spent only once everything the requester controls has
	// been checked, and before anything is signed: two concurrent replays
	// race on the store's unique id, and one loses.
	if err := s.es.UseToken(r.Context(), c.ID, c.Expiry.Time()); err != nil {
		if errors.Is(err, store.ErrTokenUsed) {
			return nil, fail(http.StatusForbidden, "enrollment token already used", err)
		}
		return nil, fail(http.StatusInternalServerError, "internal error", err)
	}
	kr.PublicKey = csr.PublicKey
	iss, err := s.ca.SignKey(kr)
	if err != nil {
		return nil, signError(err)
	}
	s.record(r, iss, method, "token:"+c.ID)
	return iss, nil
}

func signError(err error) error {
	switch {
	case errors.Is(err, pki.ErrNameNotAllowed):
		return fail(http.StatusForbidden, "name not allowed by this CA", err)
	case errors.Is(err, pki.ErrBadCSR):
		return fail(http.StatusBadRequest, "bad CSR", err)
	}
	return fail(http.StatusInternalServerError, "internal error", err)
}

// csrWithinToken refuses a CSR naming anything the token does not grant:
// a subject other than CN=<the token's CN>, or a SAN outside its list.
// A CSR may name less (EST clients often send only a CN); the certificate
// carries exactly the token's names either way.
func csrWithinToken(csr *x509.CertificateRequest, kr pki.KeyRequest) error {
	if got, want := csr.Subject.String(), kr.Subject.String(); got != "" && got != want {
		return fmt.Errorf("CSR subject %q, token grants %q", got, want)
	}
	granted := sanSet(kr.DNS, kr.IPs, kr.URIs, kr.Emails)
	for _, n := range sanSet(csr.DNSNames, csr.IPAddresses, csr.URIs, csr.EmailAddresses) {
		if !slices.Contains(granted, n) {
			return fmt.Errorf("CSR asks for %s, token grants %v", n, granted)
		}
	}
	return nil
}

// peer authenticates the certificate presented in the TLS handshake: it
// must chain to this CA's root through its issuing CA, be within its
// validity (or expired at most Grace ago), be in the inventory byte for
// byte, and not be revoked.
func (s *Server) peer(r *http.Request) (*x509.Certificate, store.Record, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, store.Record{}, fail(http.StatusUnauthorized, "a client certificate issued by this CA is required", nil)
	}
	leaf := r.TLS.PeerCertificates[0]
	who := fmt.Sprintf("subject %q serial %s issuer %q", leaf.Subject.String(), serial.Format(leaf.SerialNumber), leaf.Issuer.String())
	now := s.now()
	at := now
	if now.Before(leaf.NotBefore) {
		return nil, store.Record{}, failf(http.StatusForbidden, "certificate not yet valid", "%s: valid from %s", who, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		late := now.Sub(leaf.NotAfter)
		if late > s.opts.Grace {
			return nil, store.Record{}, failf(http.StatusForbidden, "certificate expired: enroll again with a token",
				"%s: expired %s ago (renew grace %s)", who, units.FormatDuration(late.Truncate(time.Second)), units.FormatDuration(s.opts.Grace))
		}
		at = leaf.NotAfter
	}
	if err := leaf.CheckSignatureFrom(s.ca.Issuer()); err != nil {
		return nil, store.Record{}, failf(http.StatusUnauthorized, "certificate not issued by this CA", "%s: %v", who, err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: s.roots, Intermediates: s.inters, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, store.Record{}, failf(http.StatusUnauthorized, "certificate not issued by this CA", "%s: %v", who, err)
	}
	rec, err := s.ca.Store().Get(r.Context(), store.FormatSerial(leaf.SerialNumber))
	if errors.Is(err, store.ErrNotFound) {
		return nil, store.Record{}, failf(http.StatusUnauthorized, "certificate not issued by this CA", "%s: not in the inventory", who)
	}
	if err != nil {
		return nil, store.Record{}, fail(http.StatusInternalServerError, "internal error", err)
	}
	if !bytes.Equal(rec.DER, leaf.Raw) {
		return nil, store.Record{}, failf(http.StatusUnauthorized, "certificate not issued by this CA", "%s: differs from the inventory's copy", who)
	}
	if rec.Status == store.StatusRevoked {
		return nil, store.Record{}, failf(http.StatusForbidden, "certificate revoked", "%s: revoked %s (%s)", who,
			rec.RevokedAt.Format(time.RFC3339), pki.Reason(rec.Reason))
	}
	return leaf, rec, nil
}

// renew issues a new certificate with the presented one's subject, SANs
// and profile for the key in csr, whose names must be identical (RFC 7030
// section 4.2.2). The lifetime is the old one's, bounded by the profile
// (renewLifetime).
func (s *Server) renew(r *http.Request, csr *x509.CertificateRequest, method string) (*pki.Issued, error) {
	leaf, rec, err := s.peer(r)
	if err != nil {
		return nil, err
	}
	p, err := pki.ParseProfile(rec.Profile)
	if err != nil {
		return nil, fail(http.StatusInternalServerError, "internal error", err)
	}
	if err := pki.CheckCSR(csr, p); err != nil {
		return nil, fail(http.StatusBadRequest, "bad CSR", err)
	}
	if err := sameNames(csr, leaf); err != nil {
		return nil, fail(http.StatusForbidden, "the CSR must name the same subject and subject alternative names as the certificate being renewed", err)
	}
	lifetime, err := s.renewLifetime(leaf, p)
	if err != nil {
		return nil, err
	}
	iss, err := s.ca.SignKey(pki.KeyRequest{
		PublicKey: csr.PublicKey, Profile: p, Subject: leaf.Subject,
		DNS: leaf.DNSNames, IPs: leaf.IPAddresses, URIs: leaf.URIs, Emails: leaf.EmailAddresses,
		Lifetime: lifetime,
	})
	if err != nil {
		return nil, signError(err)
	}
	s.record(r, iss, method, "serial:"+serial.Format(leaf.SerialNumber))
	if s.opts.RevokeSuperseded {
		if _, err := s.ca.Revoke(r.Context(), leaf.SerialNumber, pki.ReasonSuperseded); err != nil && !errors.Is(err, pki.ErrAlreadyRevoked) {
			s.log.Error("enrollment API: revoking the superseded certificate failed", "serial", serial.Format(leaf.SerialNumber), "err", err)
		}
	}
	return iss, nil
}

// renewLifetime is the lifetime (NotAfter - NotBefore) of the certificate
// that renews leaf: exactly leaf's, never longer, and shortened to the
// profile's maximum validity (plus the backdating every leaf has) when
// the profile's limit has dropped since leaf was issued. A
// certificate of a minute or less renews as one of the same length, never
// as one of the profile's default lifetime.
func (s *Server) renewLifetime(leaf *x509.Certificate, p pki.Profile) (time.Duration, error) {
	lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
	if lifetime <= 0 {
		return 0, failf(http.StatusForbidden, "certificate has no validity period to renew",
			"serial %s: not_before %s is not before not_after %s", serial.Format(leaf.SerialNumber),
			leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	_, max := s.ca.ProfileValidity(p)
	// The longest lifetime whose part after now (all but the backdate, see
	// pki.KeyRequest.Lifetime) fits the maximum.
	return min(lifetime, max+min(max, time.Minute)), nil
}

func sameNames(csr *x509.CertificateRequest, leaf *x509.Certificate) error {
	if got, want := csr.Subject.String(), leaf.Subject.String(); got != want {
		return fmt.Errorf("CSR subject %q, certificate subject %q", got, want)
	}
	got := sanSet(csr.DNSNames, csr.IPAddresses, csr.URIs, csr.EmailAddresses)
	want := sanSet(leaf.DNSNames, leaf.IPAddresses, leaf.URIs, leaf.EmailAddresses)
	if !slices.Equal(got, want) {
		return fmt.Errorf("CSR names %v, certificate names %v", got, want)
	}
	return nil
}

// record writes who asked for iss, and from where, to the inventory and
// the audit log.
func (s *Server) record(r *http.Request, iss *pki.Issued, method, requester string) {
	c := iss.Cert()
	e := store.Enrollment{Serial: iss.Record.Serial, Method: method, Requester: requester, Remote: r.RemoteAddr, At: s.now()}
	if err := s.es.RecordEnrollment(r.Context(), e); err != nil {
		s.log.Error("enrollment API: recording the enrollment failed", "serial", serial.Format(c.SerialNumber), "err", err)
	}
	s.audit.Info("certificate issued", "event", "enroll", "method", method, "serial", serial.Format(c.SerialNumber),
		"subject", c.Subject.String(), "sans", iss.Record.SANs, "profile", iss.Record.Profile,
		"not_after", c.NotAfter.UTC().Format(time.RFC3339), "requester", requester, "remote", r.RemoteAddr)
}
