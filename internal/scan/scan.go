package scan

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options say what to scan and how.
type Options struct {
	// Addr is HOST:PORT. Required.
	Addr string
	// ServerName is the SNI name and the name the certificate must match.
	// If empty, the host of Addr is used (and no SNI is sent for an IP).
	ServerName string
	// Roots verify the server's chain. If nil, the system roots are used.
	Roots *x509.CertPool
	// Intermediates may complete a served chain when fetching is off; a
	// chain that verifies only with them is reported incomplete. May be nil.
	Intermediates *x509.CertPool
	// ClientCert is a client certificate the server should accept. If
	// nil, that check is not made.
	ClientCert *tls.Certificate
	// NoEKUCert is a certificate from a trusted CA without the clientAuth
	// EKU (e.g. the server's own); the server should refuse it. If nil,
	// that check is not made.
	NoEKUCert *tls.Certificate
	// ClientCAs are the CAs the server trusts for clients, when known:
	// the impostor certificate then copies the first one's key ID too.
	ClientCAs []*x509.Certificate
	// RequireClientCert says the server must refuse clients without a
	// certificate (an accepted one is then a failure, not a warning).
	RequireClientCert bool
	// HTTP sends HTTP requests after the handshake (HSTS, 421).
	HTTP bool
	// MisdirectedHost is a Host header naming another virtual host than
	// ServerName, for the 421 check. If empty, the check is skipped.
	MisdirectedHost string
	// Fetch allows fetching AIA issuers, CRLs and OCSP from the URLs in
	// the certificates.
	Fetch bool
	// Timeout bounds each connection. If zero, 5s.
	Timeout time.Duration
	// Concurrency bounds the open connections. If zero, 8.
	Concurrency int
	// Progress, if not nil, is told what the scan is doing.
	Progress func(step string)
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
	// Dial opens connections. If nil, a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

type scanner struct {
	opts       Options
	host       string
	p          *prober
	now        func() time.Time
	httpClient *http.Client
	mu         sync.Mutex
}

// Run scans opts.Addr and returns the report. An error means the target
// could not be scanned at all (unreachable, not TLS).
func Run(ctx context.Context, opts Options) (*Report, error) {
	host, _, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("scan %q: want HOST:PORT: %w", opts.Addr, err)
	}
	if opts.ServerName == "" && net.ParseIP(host) == nil {
		opts.ServerName = host
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Dial == nil {
		d := &net.Dialer{Timeout: opts.Timeout}
		opts.Dial = d.DialContext
	}
	if opts.Progress == nil {
		opts.Progress = func(string) {}
	}
	s := &scanner{opts: opts, host: host, now: opts.Now}
	s.p = &prober{addr: opts.Addr, sni: opts.ServerName, timeout: opts.Timeout,
		sem: make(chan struct{}, opts.Concurrency), dial: opts.Dial, internalErrors: new(atomic.Int32)}
	s.httpClient = &http.Client{Timeout: opts.Timeout, Transport: &http.Transport{DialContext: opts.Dial, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// The whole scan is bounded too, so a server that answers slowly
	// cannot hold it for long.
	ctx, cancel := context.WithTimeout(ctx, 40*opts.Timeout)
	defer cancel()
	return s.run(ctx)
}

func (s *scanner) run(ctx context.Context) (*Report, error) {
	start := s.now()
	r := &Report{Schema: SchemaVersion, Target: s.opts.Addr, ServerName: s.opts.ServerName, Started: start.UTC(),
		Groups: []string{}, SignatureAlgorithms: []string{}, SignatureAlgorithms13: []string{}, MTLS: []Check{}, Errors: []string{}}
	// Reachability first: a target that does not answer TCP fails fast.
	c, release, err := s.p.dialRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	c.Close()
	release()

	s.opts.Progress("protocols and cipher suites")
	versions := []uint16{VersionSSL2, VersionSSL3, VersionTLS10, VersionTLS11, VersionTLS12, VersionTLS13}
	r.Protocols = make([]Protocol, len(versions))
	var wg sync.WaitGroup
	for i, v := range versions {
		r.Protocols[i] = Protocol{Name: VersionName(v), Version: v, Suites: []Suite{}}
		wg.Go(func() {
			if err := s.protocol(ctx, &r.Protocols[i]); err != nil {
				s.addError(r, err)
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("scan %s: %w", s.opts.Addr, ctx.Err())
	}
	if !slices.ContainsFunc(r.Protocols, func(p Protocol) bool { return p.Offered }) {
		return nil, fmt.Errorf("scan %s: no SSL or TLS version could be negotiated (is it a TLS port?)", s.opts.Addr)
	}
	// Nothing ran beside the listing: these alerts are its own.
	listedErrors := s.p.internalErrors.Load()

	s.opts.Progress("groups, signature algorithms, behaviour")
	wg.Go(func() { s.keyExchange(ctx, r) })
	var probed []Vuln
	wg.Go(func() { probed = s.p.behaviourProbes(ctx, r, s.opts.ClientCert) })
	var chain []*x509.Certificate
	var staple []byte
	wg.Go(func() { chain, staple = s.serverChain(ctx, r) })
	wg.Wait()

	if r.offered(VersionTLS12) {
		ok, err := s.p.sessionIDResumption(ctx, r, s.opts.ClientCert)
		if err != nil {
			s.addError(r, err)
		}
		r.Behaviour.SessionIDResumption = ok
		r.Behaviour.Resumption = r.Behaviour.Resumption || ok
	}

	s.opts.Progress("certificates")
	s.analyzeChain(ctx, r, chain, staple)

	s.opts.Progress("client certificates and HTTP")
	s.mtls(ctx, r)
	if s.opts.HTTP {
		s.httpChecks(ctx, r)
	}
	// Every verdict of inferredVulns rests on the listing (those marked
	// probed too: the listing asked for RC4, export suites, SSLv2).
	listed := r.inferredVulns()
	for i := range listed {
		listed[i] = judgedListed(listed[i], listedErrors)
	}
	r.Vulns = append(probed, listed...)
	// These probes run one after the other, nothing beside them: the
	// scan-wide count of internal_error alerts is theirs.
	probe := func(f func() Vuln) Vuln {
		before := s.p.internalErrors.Load()
		v := f()
		return judged(v, s.p.internalErrors.Load()-before)
	}
	r.Vulns = append(r.Vulns,
		probe(func() Vuln { return s.p.robot(ctx, r) }),
		r.breach(),
		probe(func() Vuln { return s.ticketbleed(ctx, r) }),
		probe(func() Vuln { return s.p.poodleTLS(ctx, r, s.opts.ClientCert) }))
	for i := range r.Vulns {
		if r.Vulns[i].Method == "inferred" { // "only TLS 1.3 is offered", "no RSA key exchange suite accepted"
			r.Vulns[i] = judgedListed(r.Vulns[i], listedErrors)
		}
	}
	slices.SortStableFunc(r.Vulns, func(a, b Vuln) int { return vulnOrder(a.ID) - vulnOrder(b.ID) })
	r.Behaviour.InternalErrors = int(s.p.internalErrors.Load())
	r.computeGrade()
	r.DurationMS = s.now().Sub(start).Milliseconds()
	return r, nil
}

func (s *scanner) addError(r *Report, err error) {
	s.mu.Lock()
	r.Errors = append(r.Errors, err.Error())
	s.mu.Unlock()
}

var vulnIDs = []string{"heartbleed", "ccs_injection", "ticketbleed", "robot", "crime", "breach", "poodle_ssl", "poodle_tls", "beast", "sweet32", "freak", "logjam", "drown", "lucky13", "rc4"}

func vulnOrder(id string) int { return slices.Index(vulnIDs, id) }

// protocol probes one version: offered, its suites, the server's order.
func (s *scanner) protocol(ctx context.Context, p *Protocol) error {
	if p.Version == VersionSSL2 {
		ok, _, err := s.p.sslv2(ctx)
		p.Offered = ok
		return err
	}
	ids, err := s.p.enumerateSuites(ctx, p.Version)
	if err != nil {
		return err
	}
	p.Offered = len(ids) > 0
	if !p.Offered {
		return nil
	}
	order, err := s.p.serverOrder(ctx, p.Version, ids)
	if err != nil {
		return err
	}
	p.ServerOrder = order
	if p.Version == VersionTLS13 {
		// TLS 1.3 suite choice is commonly client-ordered (Go, and
		// OpenSSL's default): report that as the server's answer.
		p.ServerOrder = order
	}
	for _, id := range ids {
		p.Suites = append(p.Suites, SuiteInfo(id))
	}
	return nil
}

// keyExchange finds the groups, the TLS 1.2 and 1.3 signature algorithms
// and the DH prime size.
func (s *scanner) keyExchange(ctx context.Context, r *Report) {
	var groups []uint16
	if r.offered(VersionTLS13) {
		g, err := s.p.groups13(ctx)
		if err != nil {
			s.addError(r, err)
		}
		groups = g
		algs, err := s.p.sigAlgs13(ctx)
		if err != nil {
			s.addError(r, err)
		}
		for _, a := range algs {
			r.SignatureAlgorithms13 = append(r.SignatureAlgorithms13, SigAlgName(a))
		}
	}
	if v, suites := r.bestLegacy(); v != 0 {
		for _, g := range s.p.groups12(ctx, v, suites) {
			if !slices.Contains(groups, g) {
				groups = append(groups, g)
			}
		}
		if v == VersionTLS12 {
			for _, a := range s.p.sigAlgs12(ctx, suites) {
				r.SignatureAlgorithms = append(r.SignatureAlgorithms, SigAlgName(a))
			}
		}
		var dhe []uint16
		for _, id := range suites {
			if SuiteInfo(id).Kx == "DHE" {
				dhe = append(dhe, id)
			}
		}
		if len(dhe) > 0 {
			res, err := s.p.hello(ctx, s.p.baseHello(v, dhe), true, false)
			if err == nil && res.kx != nil {
				r.DHBits, r.DHCommonPrime = res.kx.dhBits, commonPrime(res.kx.dhP)
			}
		}
	}
	for _, g := range groups {
		r.Groups = append(r.Groups, GroupName(g))
	}
}

func (r *Report) offered(v uint16) bool {
	for _, p := range r.Protocols {
		if p.Version == v {
			return p.Offered
		}
	}
	return false
}

// serverChain gets the served chain and staple with crypto/tls, falling
// back to a raw TLS 1.0-1.2 handshake for servers crypto/tls cannot talk
// to. It also learns ALPN, tickets and resumption.
func (s *scanner) serverChain(ctx context.Context, r *Report) ([]*x509.Certificate, []byte) {
	h := &handshake{}
	cfg := s.tlsConfig(s.opts.ClientCert, []string{"h2", "http/1.1"}, h)
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	s.dialTLS(ctx, cfg, h, false, "", false)
	var chain []*x509.Certificate
	var staple []byte
	if h.state != nil {
		chain, staple = h.state.PeerCertificates, h.state.OCSPResponse
	}
	if h.final != nil {
		r.Behaviour.ALPN = []string{}
		if p := h.final.NegotiatedProtocol; p != "" {
			r.Behaviour.ALPN = append(r.Behaviour.ALPN, p)
			if p == "h2" {
				h2 := &handshake{}
				s.dialTLS(ctx, s.tlsConfig(s.opts.ClientCert, []string{"http/1.1"}, h2), h2, false, "", false)
				if h2.final != nil && h2.final.NegotiatedProtocol == "http/1.1" {
					r.Behaviour.ALPN = append(r.Behaviour.ALPN, "http/1.1")
				}
			}
		}
		// Resumption: a second handshake with the session just cached.
		if h.alert == "" && h.afterErr == nil {
			h2 := &handshake{}
			cfg2 := s.tlsConfig(s.opts.ClientCert, nil, h2)
			cfg2.ClientSessionCache = cfg.ClientSessionCache
			s.dialTLS(ctx, cfg2, h2, false, "", false)
			r.Behaviour.Resumption = h2.resumed
			if h2.resumed {
				r.Behaviour.SessionTickets = true
			}
		}
	}
	// Raw handshake: session IDs and tickets in TLS 1.2, and the chain
	// when crypto/tls could not get it.
	if v, suites := r.bestLegacy(); v != 0 {
		ch := s.p.baseHello(v, suites)
		ch.statusRequest = true
		res, err := s.p.hello(ctx, ch, true, false)
		if err == nil && res.accepted() {
			r.Behaviour.SessionIDs = len(res.hello.sessionID) > 0
			if _, ok := res.hello.extensions[extSessionTicket]; ok {
				r.Behaviour.SessionTickets = true
			}
			if len(chain) == 0 && len(res.certs) > 0 {
				c, err := parseChain(res.certs)
				if err != nil {
					s.addError(r, err)
				}
				chain, staple = c, res.staple
			}
		}
	}
	if h.err != nil && len(chain) == 0 {
		s.addError(r, fmt.Errorf("certificate handshake: %w", h.err))
	}
	return chain, staple
}

// outcome runs one handshake presenting cert.
func (s *scanner) outcome(ctx context.Context, cert *tls.Certificate) *handshake {
	h := &handshake{}
	s.dialTLS(ctx, s.tlsConfig(cert, []string{"http/1.1"}, h), h, s.opts.HTTP, "", false)
	return h
}

// mtls runs the client-certificate checks.
func (s *scanner) mtls(ctx context.Context, r *Report) {
	add := func(id, name string, st Status, detail string) {
		r.MTLS = append(r.MTLS, Check{ID: id, Name: name, Status: st, Detail: detail})
	}
	none := s.outcome(ctx, nil)
	if none.certReq == nil {
		if ans, how := none.answer(); ans == noAnswer {
			add("requested", "client certificate requested", Inconclusive, "could not tell: "+how)
			return
		}
		add("requested", "client certificate requested", Info, "the server does not request a client certificate")
		return
	}
	var names []string
	for _, raw := range none.certReq.AcceptableCAs {
		names = append(names, rdnString(raw))
	}
	detail := "requested; acceptable CAs: none named"
	if len(names) > 0 {
		detail = "requested; acceptable CAs: " + strings.Join(names, "; ")
	}
	add("requested", "client certificate requested", Info, detail)

	ans, how := none.answer()
	switch {
	case ans == refused:
		add("no_cert", "no certificate refused", Pass, how)
	case ans == noAnswer:
		add("no_cert", "no certificate refused", Inconclusive, how)
	case s.opts.RequireClientCert:
		add("no_cert", "no certificate refused", Fail, how+" without a certificate, but the configuration requires one")
	default:
		add("no_cert", "no certificate refused", Warn, how+" without a certificate (optional client authentication)")
	}

	if ss, err := mintSelfSigned(s.now()); err == nil {
		h := s.outcome(ctx, ss)
		st, how := judgeRefusal(h)
		add("self_signed", "self-signed certificate refused", st, how)
	}

	var subject, skid []byte
	switch {
	case len(s.opts.ClientCAs) > 0:
		subject, skid = s.opts.ClientCAs[0].RawSubject, s.opts.ClientCAs[0].SubjectKeyId
	case len(none.certReq.AcceptableCAs) > 0:
		subject = none.certReq.AcceptableCAs[0]
	}
	if imp, err := mintImpostor(s.now(), subject, skid); err == nil {
		h := s.outcome(ctx, imp)
		st, how := judgeRefusal(h)
		name := "impostor CA (trusted CA's name, other key) refused"
		if subject == nil {
			how += " (no CA name was advertised: an unknown CA was used)"
		}
		add("impostor_ca", name, st, how)
	}

	if s.opts.NoEKUCert != nil {
		h := s.outcome(ctx, s.opts.NoEKUCert)
		st, how := judgeRefusal(h)
		add("no_client_eku", "certificate without clientAuth EKU refused", st, how)
	} else {
		add("no_client_eku", "certificate without clientAuth EKU refused", NotApplied, "needs a certificate from a trusted CA without clientAuth (scan --config uses the server's own)")
	}

	if s.opts.ClientCert == nil {
		add("valid_cert", "given certificate accepted", NotApplied, "no --cert given")
		add("resumption", "resumption keeps the client certificate check", NotApplied, "needs --cert")
		return
	}
	good := s.outcome(ctx, s.opts.ClientCert)
	switch ans, how := good.answer(); ans {
	case refused:
		add("valid_cert", "given certificate accepted", Fail, how)
	case noAnswer:
		add("valid_cert", "given certificate accepted", Inconclusive, how)
	default:
		add("valid_cert", "given certificate accepted", Pass, how)
	}
	st, how := s.resumption(ctx)
	add("resumption", "resumption keeps the client certificate check", st, how)
}

// resumption checks that a session resumed without presenting a
// certificate again keeps the verdict of the full handshake: it resumes
// only the session it was given, answers like the full handshake, and a
// session obtained without a certificate does not resume into access.
func (s *scanner) resumption(ctx context.Context) (Status, string) {
	cache := tls.NewLRUClientSessionCache(4)
	full := &handshake{}
	cfg := s.tlsConfig(s.opts.ClientCert, []string{"http/1.1"}, full)
	cfg.ClientSessionCache = cache
	s.dialTLS(ctx, cfg, full, s.opts.HTTP, "", false)
	if full.err != nil {
		if ans, how := full.answer(); ans == noAnswer {
			return Inconclusive, "full handshake with the certificate: " + how
		}
		return Fail, "full handshake with the certificate failed: " + full.err.Error()
	}
	// The resumed handshake offers no certificate: if the server asks
	// for one, it is not resuming.
	again := &handshake{}
	cfg2 := s.tlsConfig(nil, []string{"http/1.1"}, again)
	cfg2.ClientSessionCache = cache
	s.dialTLS(ctx, cfg2, again, s.opts.HTTP, "", false)
	if !again.resumed {
		switch ans, how := again.answer(); ans {
		case refused:
			return Pass, "the server does not resume client-authenticated sessions (a full handshake is required)"
		case noAnswer:
			return Inconclusive, "no resumption; the new handshake without a certificate: " + how
		}
		return Info, "no resumption; the new handshake without a certificate was not refused"
	}
	if full.http != nil && again.http != nil {
		if again.http.StatusCode != full.http.StatusCode {
			return Warn, fmt.Sprintf("resumed session answered %s, the full handshake %s", again.http.Status, full.http.Status)
		}
		return Pass, fmt.Sprintf("resumed; answered %s as the full handshake", again.http.Status)
	}
	switch ans, how := again.answer(); ans {
	case refused:
		return Warn, "resumed, then " + how
	case noAnswer:
		return Inconclusive, "resumed, then " + how
	}
	return Pass, "resumed with the session of the verified certificate"
}

// judgeRefusal is Pass when the server refused the client, Fail when it
// accepted it, and Inconclusive when no connection was made or the server
// went silent (timeout, reset, close without an alert): that is no
// evidence of a refusal.
func judgeRefusal(h *handshake) (Status, string) {
	switch ans, how := h.answer(); ans {
	case refused:
		return Pass, how
	case noAnswer:
		return Inconclusive, how
	default:
		return Fail, how
	}
}

// httpChecks reads HSTS and tests the SNI/Host mismatch.
func (s *scanner) httpChecks(ctx context.Context, r *Report) {
	r.HTTP = &HTTPResult{}
	h := &handshake{}
	s.dialTLS(ctx, s.tlsConfig(s.opts.ClientCert, []string{"http/1.1"}, h), h, true, "", false)
	if h.http == nil {
		err := h.err
		if err == nil {
			err = h.httpErr
		}
		s.addError(r, fmt.Errorf("http request: %w", errors.Join(err, errors.New(h.alert))))
		return
	}
	r.HTTP.Status = h.http.StatusCode
	r.HTTP.HSTS = h.http.Header.Get("Strict-Transport-Security")
	r.HTTP.HSTSMaxAge = parseHSTS(r.HTTP.HSTS)
	r.HTTP.ContentEncoding = h.http.Header.Get("Content-Encoding")
	if s.opts.MisdirectedHost != "" {
		m := &handshake{}
		s.dialTLS(ctx, s.tlsConfig(s.opts.ClientCert, []string{"http/1.1"}, m), m, true, s.opts.MisdirectedHost, false)
		r.HTTP.MisdirectedHost = s.opts.MisdirectedHost
		if m.http != nil {
			r.HTTP.MisdirectedStatus = m.http.StatusCode
		}
		st, detail := Pass, fmt.Sprintf("SNI %q with Host %q answered %d", s.opts.ServerName, s.opts.MisdirectedHost, r.HTTP.MisdirectedStatus)
		if r.HTTP.MisdirectedStatus != http.StatusMisdirectedRequest {
			st = Fail
			if m.http == nil {
				detail = fmt.Sprintf("SNI %q with Host %q: no HTTP answer", s.opts.ServerName, s.opts.MisdirectedHost)
			}
		}
		r.MTLS = append(r.MTLS, Check{ID: "misdirected", Name: "SNI/Host mismatch refused (421)", Status: st, Detail: detail})
	}
}

// breach judges HTTP compression of the answer to "/" (BREACH needs a
// secret and attacker input in a compressed body: only the compression
// can be seen from outside).
func (r *Report) breach() Vuln {
	v := Vuln{ID: "breach", Name: "BREACH (HTTP compression)", CVE: "CVE-2013-3587", Method: "probed"}
	switch {
	case r.HTTP == nil:
		v.Status, v.Detail = NotTested, "needs --http"
	case r.HTTP.Status == 0:
		v.Status, v.Detail = NotTested, "no HTTP answer"
	case r.HTTP.ContentEncoding != "" && r.HTTP.ContentEncoding != "identity":
		v.Status, v.Detail = Exposed, "the answer to / is compressed ("+r.HTTP.ContentEncoding+"); only pages with secrets and reflected input matter"
	default:
		v.Status, v.Detail = NotVulnerable, "no HTTP compression of /"
	}
	return v
}
