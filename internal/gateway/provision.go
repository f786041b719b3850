package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/certsource"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/guard"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/revocation"
	"github.com/gatehouse/gatehouse/internal/secretfile"
	"github.com/gatehouse/gatehouse/internal/tlsconf"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// snapshot is everything the gateway needs to serve, built completely from
// one configuration and never changed afterwards. A reload builds a new one
// and swaps a pointer, so a request sees one consistent state.
type snapshot struct {
	file     *config.File
	tls      *tls.Config // base server config; cloned per connection
	verifier *tlsconf.Verifier
	// policy is what the request pipeline decides with.
	policy   *pipeline.Policy
	timeouts config.Timeouts
	limits   config.Limits
	// policyID digests what a client certificate was accepted under (the
	// client auth mode and the trusted CAs). Session tickets carry it, so
	// a ticket minted under one CA set is not resumed under another.
	policyID [32]byte
	// revocation checks client chains by CRL and OCSP; nil when neither
	// is configured.
	revocation *revocation.Checker
	// stapler keeps OCSP staples for the served certificates; nil when
	// stapling is off.
	stapler *revocation.Stapler
	// stop ends the snapshot's background work (CRL refresh, stapling)
	// once it has been replaced.
	stop context.CancelFunc
	// upstreams are the backend clients by upstreamKey; a reload reuses
	// the ones whose settings did not change, keeping their pools.
	upstreams map[string]*upstream.Client
	// guard holds the limits, validators and circuit breakers; a reload
	// carries their state over where the configuration kept them.
	guard *guard.Guard
}

// provisionEnv is what provisioning needs besides the configuration.
type provisionEnv struct {
	ctx  context.Context // bounds fetches during provisioning and the background work after it
	now  func() time.Time
	log  *slog.Logger
	prev *snapshot // the snapshot being replaced, whose CRLs and staples are reused
	// check provisions for `config check`: sources are loaded once, and
	// no background work is started.
	check bool
}

// provision loads every file the configuration names and builds a
// snapshot. Errors are config.Errors with file, line and field.
func provision(f *config.File, env provisionEnv) (*snapshot, error) {
	c := &f.Config
	var errs config.Errors
	fail := func(field string, err error) {
		errs = append(errs, &config.FieldError{File: f.Path, Line: f.Line(field), Field: field, Err: err})
	}
	s := &snapshot{file: f, timeouts: c.Timeouts, limits: c.Limits, upstreams: map[string]*upstream.Client{}}
	pol := &pipeline.Policy{RefuseInHTTP: c.ClientAuth.Mode != config.ModeNone && c.ClientAuth.Refusal == config.RefusalHTTP}

	var certs []tls.Certificate
	for i, ck := range c.ServerTLS.Certificates {
		field := "server_tls.certificates[" + strconv.Itoa(i) + "]"
		var pass []byte
		if ck.KeyPassphraseFile != "" {
			p, err := secretfile.Read(f.Resolve(ck.KeyPassphraseFile), "key passphrase")
			if err != nil {
				fail(field+".key_passphrase_file", err)
				continue
			}
			pass = p
		}
		kp, err := certsource.LoadKeyPair(f.Resolve(ck.Cert), f.Resolve(ck.Key), pass)
		if err != nil {
			fail(field, err)
			continue
		}
		if !hasEKU(kp.Leaf, x509.ExtKeyUsageServerAuth) {
			fail(field+".cert", fmt.Errorf("%s (subject %q) lacks the serverAuth extended key usage; clients will refuse it (issue it with --profile server)", ck.Cert, kp.Leaf.Subject))
			continue
		}
		certs = append(certs, kp)
		pol.CertNames = append(pol.CertNames, certDNSNames(kp.Leaf))
	}

	minV, err := tlsconf.Version(c.ServerTLS.MinVersion)
	if err != nil {
		fail("server_tls.min_version", err)
	}
	var suites []uint16
	for _, name := range c.ServerTLS.CipherSuites {
		id, err := config.CipherSuite(name)
		if err == nil {
			suites = append(suites, id)
		}
	}

	var pool *x509.CertPool
	var cas []*x509.Certificate
	if c.ClientAuth.Mode != config.ModeNone {
		var resolved []string
		for _, p := range c.ClientAuth.TrustedCAs {
			resolved = append(resolved, f.Resolve(p))
		}
		pool, cas, err = certsource.LoadCAs(resolved)
		if err != nil {
			fail("client_auth.trusted_cas", err)
		}
	}
	s.policyID = policyDigest(c.ClientAuth.Mode, cas)
	s.verifier = &tlsconf.Verifier{Roots: pool, Required: c.ClientAuth.Mode == config.ModeRequire,
		MaxChainLength: c.ClientAuth.MaxChainLength, AllowMissingEKU: c.ClientAuth.AllowMissingEKU}
	if c.ClientAuth.AllowMissingEKU && c.ClientAuth.Mode != config.ModeNone && !env.check {
		env.log.Warn("client_auth.allow_missing_eku is on: client certificates without any extended key usage extension are accepted; reissue them with extendedKeyUsage=clientAuth and turn it off")
	}
	s.tls = tlsconf.ServerConfig(tlsconf.Params{
		MinVersion:   minV,
		CipherSuites: suites,
		Certificates: certs,
		ClientAuth:   tlsconf.ClientAuthType(c.ClientAuth.Mode),
		ClientCAs:    pool,
	})

	if len(errs) == 0 {
		if err := s.provisionRevocation(f, cas, env); err != nil {
			fail("client_auth.revocation", err)
		}
	}

	pol.HSTS = hstsValue(c.HSTS)
	for _, h := range c.IdentityHeaders {
		pol.XFCC = pol.XFCC || h == "xfcc"
		pol.RFC9440 = pol.RFC9440 || h == "rfc9440"
	}
	pol.Verifier = s.verifier
	pol.BodyIdle = time.Duration(c.Timeouts.BodyIdle)
	pol.MinBodyRate = int64(c.Limits.MinBodyRate)

	var prevUp map[string]*upstream.Client
	var prevGuard *guard.Guard
	if env.prev != nil {
		prevUp, prevGuard = env.prev.upstreams, env.prev.guard
	}
	g, err := guard.Build(f, guard.Options{Prev: prevGuard, Now: env.now, Log: env.log, Check: env.check})
	if err != nil {
		var ges config.Errors
		if errors.As(err, &ges) {
			errs = append(errs, ges...)
		} else {
			fail("", err)
		}
	} else {
		s.guard, pol.Guard = g, g
	}
	for i := range c.Routes {
		rc := &c.Routes[i]
		field := "routes[" + strconv.Itoa(i) + "]"
		r, err := newRoute(f, rc, s.upstreams, prevUp)
		if err != nil {
			// Point at the offending allow rule's line, when it is one.
			var re *authz.RuleError
			line := f.Line(field)
			if errors.As(err, &re) {
				line = f.Line(field + ".allow[" + strconv.Itoa(re.Index) + "]." + re.Field)
			}
			errs = append(errs, &config.FieldError{File: f.Path, Line: line, Field: field, Err: err})
			continue
		}
		if s.guard != nil {
			r.Guard = s.guard.Route(rc.Name)
		}
		pol.Routes = append(pol.Routes, r)
	}
	if s.revocation != nil {
		pol.Revocation = s.revocation
	}
	s.policy = pipeline.NewPolicy(pol)
	if len(errs) > 0 {
		s.close()
		if s.guard != nil {
			s.guard.Retire(prevGuard) // a new Redis connection, if any
		}
		return nil, errs
	}
	if !env.check {
		bg, stop := context.WithCancel(env.ctx)
		s.stop = stop
		if s.revocation != nil {
			go s.revocation.Run(bg)
		}
		if s.stapler != nil {
			go s.stapler.Run(bg)
		}
	}
	return s, nil
}

// provisionRevocation builds the CRL/OCSP checker and the stapler,
// reusing what the previous snapshot fetched where sources are the same.
func (s *snapshot) provisionRevocation(f *config.File, cas []*x509.Certificate, env provisionEnv) error {
	c := &f.Config
	var prevChecker *revocation.Checker
	var prevStapler *revocation.Stapler
	if env.prev != nil {
		prevChecker, prevStapler = env.prev.revocation, env.prev.stapler
	}
	r := c.ClientAuth.Revocation
	if c.ClientAuth.Mode != config.ModeNone && (len(r.CRL) > 0 || r.OCSP != "off") {
		var sources []string
		for _, src := range r.CRL {
			if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
				sources = append(sources, src)
			} else {
				sources = append(sources, f.Resolve(src))
			}
		}
		chk, err := revocation.New(env.ctx, revocation.Config{
			CRLs:        sources,
			Refresh:     time.Duration(r.Refresh),
			OCSP:        revocation.OCSPMode(r.OCSP),
			OCSPURL:     r.OCSPURL,
			Unavailable: revocation.Unavailable(r.Unavailable),
			MaxCRLSize:  int64(r.MaxCRLSize),
			TrustedCAs:  cas,
			Now:         env.now,
			Log:         env.log,
		}, prevChecker)
		if err != nil {
			return err
		}
		s.revocation = chk
	} else if c.ClientAuth.Mode != config.ModeNone && !env.check {
		env.log.Warn("client certificate revocation is not checked (no CRL, OCSP off): a revoked certificate is accepted until it expires; set client_auth.revocation",
			"trusted_cas", len(cas))
	}
	if c.ServerTLS.OCSPStapling && !env.check {
		s.stapler = revocation.NewStapler(env.ctx, s.tls.Certificates, revocation.StaplerOptions{
			Now: env.now, Log: env.log, Prev: prevStapler,
			// A leaf signed directly by a root has no issuer in its served
			// chain; the same CA often issues the client certificates.
			Issuers: cas,
		})
		s.tls.GetCertificate = s.stapledCertificate
	}
	return nil
}

// stapledCertificate chooses the certificate for the client's SNI as
// crypto/tls would, and returns it with its current OCSP staple.
func (s *snapshot) stapledCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	certs := s.tls.Certificates
	if len(certs) > 1 {
		for i := range certs {
			if hello.SupportsCertificate(&certs[i]) == nil {
				return s.stapler.Certificate(i), nil
			}
		}
	}
	return s.stapler.Certificate(0), nil
}

// close ends the snapshot's background work; requests still holding it
// keep working with the last state.
func (s *snapshot) close() {
	if s.stop != nil {
		s.stop()
	}
	if s.revocation != nil {
		s.revocation.Close()
	}
}

func newRoute(f *config.File, rc *config.Route, ups, prev map[string]*upstream.Client) (*pipeline.Route, error) {
	backend, err := url.Parse(rc.Backend)
	if err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	r := &pipeline.Route{
		Name:     rc.Name,
		Host:     config.NormalizeHost(rc.Host),
		Path:     rc.Path,
		Requires: rc.Requires(),
		MaxBody:  int64(rc.MaxBody),
	}
	// WebSocket is the only upgrade passed, by default; h2c never.
	if rc.Upgrades == nil {
		r.Upgrades = map[string]bool{"websocket": true}
	} else {
		r.Upgrades = map[string]bool{}
		for _, u := range rc.Upgrades {
			if u = strings.ToLower(u); u == "websocket" {
				r.Upgrades[u] = true
			}
		}
	}
	r.Authz, err = authz.Compile(rc.Allow, func(p string) ([]*x509.Certificate, error) {
		return certsource.LoadCerts(f.Resolve(p))
	})
	if err != nil {
		return nil, err
	}
	if len(rc.Methods) > 0 {
		r.Methods = map[string]bool{}
		for _, m := range rc.Methods {
			r.Methods[m] = true
		}
		r.Allow = strings.Join(rc.Methods, ", ")
	}
	if (backend.Scheme != "http" && backend.Scheme != "https") || backend.Host == "" {
		// Validation reports the backend; no second problem for it here
		// (provisioning only follows a valid configuration when serving).
		return r, nil
	}
	r.Upstream, err = upstreamFor(f, rc, backend, ups, prev)
	if err != nil {
		return nil, fmt.Errorf("upstream_tls: %w", err)
	}
	return r, nil
}

// policyDigest is a digest of the client auth mode and the trusted CAs,
// independent of file order.
func policyDigest(mode string, cas []*x509.Certificate) [32]byte {
	sums := make([][32]byte, len(cas))
	for i, c := range cas {
		sums[i] = sha256.Sum256(c.Raw)
	}
	sort.Slice(sums, func(i, j int) bool { return bytes.Compare(sums[i][:], sums[j][:]) < 0 })
	h := sha256.New()
	h.Write([]byte(mode))
	for _, s := range sums {
		h.Write(s[:])
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

func hasEKU(c *x509.Certificate, want x509.ExtKeyUsage) bool {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return true // no EKU extension: any usage (RFC 5280 4.2.1.12)
	}
	for _, u := range c.ExtKeyUsage {
		if u == want || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

func certDNSNames(c *x509.Certificate) []string {
	var names []string
	for _, n := range c.DNSNames {
		names = append(names, config.NormalizeHost(n))
	}
	return names
}

func hstsValue(h config.HSTS) string {
	v := "max-age=" + strconv.FormatInt(int64(time.Duration(h.MaxAge)/time.Second), 10)
	if h.IncludeSubdomains {
		v += "; includeSubDomains"
	}
	if h.Preload {
		v += "; preload"
	}
	return v
}
