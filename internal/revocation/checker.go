package revocation

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/serial"
	"golang.org/x/sync/singleflight"
)

// OCSPMode says whether client certificates are checked by OCSP.
type OCSPMode string

// The OCSP modes.
const (
	// OCSPOff never asks an OCSP responder; CRLs alone decide.
	OCSPOff OCSPMode = "off"
	// OCSPPrefer asks the responder for the leaf and uses its answer when
	// it is good or revoked; otherwise the CRL decides.
	OCSPPrefer OCSPMode = "prefer"
	// OCSPRequire needs a good answer from the responder for the leaf;
	// without one, Unavailable decides.
	OCSPRequire OCSPMode = "require"
)

// Unavailable is the policy for a certificate whose status cannot be
// established.
type Unavailable string

// The unavailable policies.
const (
	// UnavailableReject refuses the certificate (the default).
	UnavailableReject Unavailable = "reject"
	// UnavailableAllow accepts it and logs a warning every time.
	UnavailableAllow Unavailable = "allow-with-warning"
)

// Defaults for the zero values of Config.
const (
	DefaultRefresh      = time.Minute
	DefaultFetchTimeout = 10 * time.Second
	DefaultOCSPTimeout  = 3 * time.Second
	// DefaultFilePoll is how often CRL files are looked at for a change
	// between two refreshes.
	DefaultFilePoll = time.Second
	// DefaultMaxCRLSize bounds one CRL's bytes. A private CA's CRL is a
	// few KiB; 8 MiB holds about 200,000 entries.
	DefaultMaxCRLSize = 8 << 20
)

// maxLearnt bounds the intermediates a checker remembers from the one it
// replaces.
const maxLearnt = 256

// Config configures a Checker.
type Config struct {
	// CRLs are the CRL sources: file paths (already resolved against the
	// configuration's directory) and http:// or https:// URLs, DER or PEM.
	// If empty, no CRL is checked.
	CRLs []string
	// Refresh is how often every source is read again. File sources are
	// also looked at every DefaultFilePoll (or Refresh, if shorter) and
	// reloaded when their content changed. If zero, DefaultRefresh.
	Refresh time.Duration
	// OCSP is the OCSP mode for client certificates. If empty, OCSPOff.
	OCSP OCSPMode
	// OCSPURL, if set, is the responder asked for every client
	// certificate instead of the one in its AIA extension.
	OCSPURL string
	// Unavailable is the policy when a status cannot be established. If
	// empty, UnavailableReject.
	Unavailable Unavailable
	// TrustedCAs are the configured client CAs. Every CRL is verified
	// (issuer name, authority key identifier, signature) before it is
	// held: against the trusted CA or the known intermediate its issuer
	// name designates. A CRL of an intermediate not seen yet is held
	// pending: it decides nothing until it verifies against the
	// intermediate of a verified client chain, and one that does not keeps
	// that intermediate's clients refused. CAs no CRL covers are logged at
	// startup.
	TrustedCAs []*x509.Certificate
	// HTTPClient fetches CRLs and OCSP responses. If nil, a client with
	// bounded timeouts that ignores proxy settings from the environment.
	HTTPClient *http.Client
	// FetchTimeout bounds one CRL download. If zero, DefaultFetchTimeout.
	FetchTimeout time.Duration
	// OCSPTimeout bounds one OCSP exchange. If zero, DefaultOCSPTimeout.
	OCSPTimeout time.Duration
	// MaxCRLSize bounds the bytes of one CRL, read from a file or a URL;
	// a larger one is refused before it is parsed. If zero,
	// DefaultMaxCRLSize.
	MaxCRLSize int64
	// Now returns the current time. If nil, time.Now. Tests inject a clock.
	Now func() time.Time
	// Log receives load, refresh and policy messages. If nil, slog.Default().
	Log *slog.Logger
}

// Checker answers whether a verified chain is revoked. It is safe for
// concurrent use.
type Checker struct {
	mode        OCSPMode
	allow       bool
	ocspURL     string
	refresh     time.Duration
	filePoll    time.Duration
	fetchTO     time.Duration
	ocspTO      time.Duration
	maxCRLSize  int64
	client      *http.Client
	ownClient   bool
	now         func() time.Time
	log         *slog.Logger
	trustedCAs  []*x509.Certificate
	learnt      []*x509.Certificate // intermediates the previous checker's CRLs verified against
	refused     atomic.Uint64
	promote     chan struct{} // a pending CRL verified: install it
	sources     []*source
	crls        atomic.Pointer[crlIndex]
	refreshMu   sync.Mutex // serializes refresh passes; guards the sources' fetch state
	ocsp        ocspCache
	flight      singleflight.Group
	bgQueries   map[string]bool // leaves queried in the background by ocspCached; guarded by bgMu
	bg          context.Context // background OCSP work; canceled by Close
	stop        context.CancelFunc
	bgMu        sync.Mutex // guards closed and wg.Go against Close's wg.Wait
	closed      bool
	wg          sync.WaitGroup
	closeOnce   sync.Once
	sourceNames map[string]*source
}

// New validates cfg and loads every CRL source. A source that cannot be
// loaded is an error naming it, unless prev (the checker being replaced by
// a configuration reload; may be nil) holds a CRL for the same source that
// is still within its nextUpdate: that one is kept. prev's CRLs also keep
// their place when the source now yields an older one, and prev's cached
// OCSP answers are carried over. prev itself is not modified; close it
// once the new checker is in service.
func New(ctx context.Context, cfg Config, prev *Checker) (*Checker, error) {
	c, err := newChecker(cfg)
	if err != nil {
		return nil, err
	}
	if prev != nil {
		// Intermediates prev's CRLs verified against stay known: a CRL
		// naming one of them must be signed by it.
		seen := map[string]bool{}
		learn := func(cas []*x509.Certificate) {
			for _, ca := range cas {
				if !seen[string(ca.Raw)] && len(c.learnt) < maxLearnt {
					seen[string(ca.Raw)] = true
					c.learnt = append(c.learnt, ca)
				}
			}
		}
		for _, ps := range prev.sources {
			for _, d := range []*crlData{ps.cur.Load(), ps.pending.Load()} {
				if d != nil {
					learn(d.knownIssuers())
				}
			}
		}
		learn(prev.learnt)
	}
	for _, name := range cfg.CRLs {
		s, err := newSource(name)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("load CRL %q: %w", name, err)
		}
		if _, dup := c.sourceNames[name]; dup {
			continue
		}
		c.sourceNames[name] = s
		c.sources = append(c.sources, s)
		var held *crlData
		if prev != nil {
			if ps := prev.sourceNames[name]; ps != nil {
				held = ps.cur.Load()
				if p := ps.pending.Load(); p != nil && p.entries() != nil && len(p.knownIssuers()) > 0 {
					held = p // verified since, and newer than cur
				}
				s.cur.Store(held) // the reference for the CRL number, and the known issuers
			}
		}
		_, err = c.refreshSource(ctx, s, true, true)
		cur := s.cur.Load()
		usable := (cur != nil && c.now().Before(cur.nextUpdate)) || s.pending.Load() != nil
		if !usable {
			c.Close()
			if err == nil {
				err = errors.New("the CRL held is past its nextUpdate and the source has no newer one")
			}
			return nil, fmt.Errorf("load CRL %s: %w", name, err)
		}
		if cur == held && err != nil {
			c.log.Warn("CRL: source unavailable or refused at reload, keeping the CRL loaded before",
				"source", name, "crl_number", numberString(held.number), "next_update", held.nextUpdate, "err", err)
		}
	}
	c.rebuildIndex()
	if prev != nil && c.mode != OCSPOff {
		c.ocsp.copyFrom(&prev.ocsp, c.now())
	}
	c.logUncoveredCAs()
	return c, nil
}

func newChecker(cfg Config) (*Checker, error) {
	c := &Checker{
		mode:        cfg.OCSP,
		ocspURL:     cfg.OCSPURL,
		refresh:     cfg.Refresh,
		fetchTO:     cfg.FetchTimeout,
		ocspTO:      cfg.OCSPTimeout,
		maxCRLSize:  cfg.MaxCRLSize,
		promote:     make(chan struct{}, 1),
		client:      cfg.HTTPClient,
		now:         cfg.Now,
		log:         cfg.Log,
		trustedCAs:  cfg.TrustedCAs,
		sourceNames: make(map[string]*source),
	}
	switch c.mode {
	case "":
		c.mode = OCSPOff
	case OCSPOff, OCSPPrefer, OCSPRequire:
	default:
		return nil, fmt.Errorf("new revocation checker: unknown OCSP mode %q (use off, prefer or require)", cfg.OCSP)
	}
	switch cfg.Unavailable {
	case "", UnavailableReject:
	case UnavailableAllow:
		c.allow = true
	default:
		return nil, fmt.Errorf("new revocation checker: unknown unavailable policy %q (use reject or allow-with-warning)", cfg.Unavailable)
	}
	if c.ocspURL != "" {
		if u, err := url.Parse(c.ocspURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("new revocation checker: OCSP URL %q: must be an http or https URL", c.ocspURL)
		}
	}
	if c.refresh < 0 || c.fetchTO < 0 || c.ocspTO < 0 {
		return nil, errors.New("new revocation checker: durations must not be negative")
	}
	if c.maxCRLSize < 0 {
		return nil, errors.New("new revocation checker: MaxCRLSize must not be negative")
	}
	c.maxCRLSize = cmp.Or(c.maxCRLSize, DefaultMaxCRLSize)
	c.refresh = cmp.Or(c.refresh, DefaultRefresh)
	c.fetchTO = cmp.Or(c.fetchTO, DefaultFetchTimeout)
	c.ocspTO = cmp.Or(c.ocspTO, DefaultOCSPTimeout)
	c.filePoll = min(c.refresh, DefaultFilePoll)
	if c.client == nil {
		c.client, c.ownClient = newHTTPClient(), true
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.ocsp.m = make(map[string]*ocspEntry)
	c.bgQueries = make(map[string]bool)
	c.bg, c.stop = context.WithCancel(context.Background())
	c.crls.Store(&crlIndex{})
	return c, nil
}

// logUncoveredCAs states, once at startup, each trusted CA that no CRL
// covers, so that an operator sees which clients are never checked by CRL.
// With OCSP required every client is checked without one, so nothing is
// said.
func (c *Checker) logUncoveredCAs() {
	if c.mode == OCSPRequire {
		return
	}
	ix := c.crls.Load()
	for _, ca := range c.trustedCAs {
		covered := false
		for _, d := range ix.byIssuer[string(ca.RawSubject)] {
			if d.akiMatches(ca) && d.entries() != nil {
				covered = true
				break
			}
		}
		if !covered {
			c.log.Warn("CRL: none configured for CA "+ca.Subject.String(), "ca", ca.Subject.String(), "ocsp", string(c.mode))
		}
	}
}

// Run refreshes the CRL sources until ctx is done or the checker is
// closed: URLs every Refresh, scheduled from the start of the previous
// fetch, files every Refresh and whenever their content changes. A failed
// fetch keeps the last good CRL; it stays in force until its nextUpdate.
// Without CRL sources it returns at once.
func (c *Checker) Run(ctx context.Context) {
	if len(c.sources) == 0 {
		return
	}
	t := time.NewTimer(c.nextWake())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.bg.Done():
			return
		case <-c.promote:
		case <-t.C:
		}
		c.refreshAll(ctx, false)
		t.Reset(c.nextWake())
	}
}

// nextWake is how long Run sleeps: until the earliest source is due, and
// at most one file poll interval (files are watched by polling).
func (c *Checker) nextWake() time.Duration {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	now := c.now()
	wake := c.filePoll
	for _, s := range c.sources {
		if d := s.nextFetch.Sub(now); d < wake {
			wake = d
		}
	}
	return max(wake, time.Millisecond)
}

// Stats are counters of what the checker refused.
type Stats struct {
	// CRLsRefused counts CRL contents refused: unparseable, expired,
	// oversized, or not issued by the CA they name.
	CRLsRefused uint64
}

// Stats returns the checker's counters.
func (c *Checker) Stats() Stats { return Stats{CRLsRefused: c.refused.Load()} }

// Refresh reads every CRL source now, whether or not it is due, and
// returns the problems joined (a failed source keeps its last good CRL).
// Call it when a watched file changed or on SIGHUP; Run calls the same
// logic on its own schedule.
func (c *Checker) Refresh(ctx context.Context) error {
	return c.refreshAll(ctx, true)
}

// promotePending installs the pending CRLs that verified against a client
// chain's issuer as their source's CRL. c.refreshMu must be held.
func (c *Checker) promotePending() bool {
	changed := false
	for _, s := range c.sources {
		p := s.pending.Load()
		if p == nil || p.entries() == nil || len(p.knownIssuers()) == 0 {
			continue
		}
		s.pending.Store(nil)
		if ok, _, _ := replaces(s.cur.Load(), p, true); ok {
			s.cur.Store(p)
			s.expiredLogged = false
			c.log.Info("CRL: loaded (verified against the issuer in a client chain)", "source", s.name, "issuer", p.issuerName,
				"crl_number", numberString(p.number), "next_update", p.nextUpdate)
		}
		changed = true
	}
	return changed
}

func (c *Checker) refreshAll(ctx context.Context, force bool) error {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	var errs []error
	changed := c.promotePending()
	for _, s := range c.sources {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		ch, err := c.refreshSource(ctx, s, force, false)
		changed = changed || ch
		if err != nil {
			errs = append(errs, fmt.Errorf("refresh CRL %s: %w", s.name, err))
		}
	}
	if changed {
		c.rebuildIndex()
	}
	return errors.Join(errs...)
}

// Close stops background work and releases idle connections. Check keeps
// answering from the CRLs and OCSP answers held; OCSP queries fail from
// then on.
func (c *Checker) Close() {
	c.closeOnce.Do(func() {
		c.bgMu.Lock()
		c.closed = true
		c.bgMu.Unlock()
		c.stop()
		c.wg.Wait()
		if c.ownClient {
			c.client.CloseIdleConnections()
		}
	})
}

// Check returns nil when no certificate of chain (verified, leaf first,
// root last) is revoked, an error wrapping ErrRevoked when one is, and one
// wrapping ErrUnavailable when a status cannot be established and the
// policy is reject (with allow-with-warning it logs a warning and goes on).
//
// Each certificate but the root is checked against the CRLs of the next
// one in the chain, its issuer; the leaf is also checked by OCSP unless
// the mode is off. Revocation evidence from any source wins.
//
// Check runs on every handshake and request: with statuses known (CRLs
// loaded, OCSP answer cached) it only reads memory, and it allocates only
// to report a refusal.
func (c *Checker) Check(ctx context.Context, chain []*x509.Certificate) error {
	if len(chain) < 2 {
		return nil // a directly trusted root: nothing above it to ask
	}
	now := c.now()
	ix := c.crls.Load()
	for i := 0; i < len(chain)-1; i++ {
		cert, issuer := chain[i], chain[i+1]
		cr := c.status(ix, cert, issuer, now)
		if cr.promote {
			select {
			case c.promote <- struct{}{}:
			default:
			}
		}
		if cr.res == crlRevoked {
			return revokedErr(cert, cr.entry.at, cr.entry.reason, "CRL "+cr.crl.source)
		}
		unavailable := ""
		switch cr.res {
		case crlStale:
			unavailable = "the issuer's CRL is past its nextUpdate and no newer one could be loaded"
		case crlBad:
			unavailable = "a CRL naming the issuer is not issued by it (forged, or of another CA with the same name)"
		}
		if i == 0 && c.mode != OCSPOff {
			// The CRL above has been consulted first on purpose: it is a
			// map lookup, and a revoked serial needs no round trip.
			var e *ocspEntry
			if c.mode == OCSPPrefer && cr.res == crlGood {
				// A valid CRL decides without the network: use a cached
				// answer if there is one, and ask the responder in the
				// background (DESIGN.md invariant 11).
				e = c.ocspCached(cert, issuer, now)
			} else {
				e = c.ocspLookup(ctx, cert, issuer, now)
			}
			switch {
			case e == nil && c.mode == OCSPRequire:
				unavailable = "OCSP required but the certificate names no responder"
			case e == nil: // prefer, no responder: the CRL decides
			case e.status == ocspGood:
				unavailable = ""
			case e.status == ocspRevoked:
				return revokedErr(cert, e.revokedAt, e.reason, "OCSP "+e.responder)
			case c.mode == OCSPRequire:
				unavailable = "OCSP required: " + e.detail
			case cr.res == crlUncovered || cr.res == crlStale || cr.res == crlBad:
				unavailable = e.detail + "; no valid CRL to fall back on"
				if cr.res != crlUncovered {
					unavailable += " (" + unavailableCRL(cr.res) + ")"
				}
			}
		}
		if unavailable != "" {
			if err := c.unavailable(cert, unavailable); err != nil {
				return err
			}
		}
	}
	return nil
}

func unavailableCRL(r crlResult) string {
	if r == crlStale {
		return "CRL past its nextUpdate"
	}
	return "CRL not signed by the issuer"
}

func (c *Checker) unavailable(cert *x509.Certificate, reason string) error {
	err := &UnavailableError{
		Subject: cert.Subject.String(),
		Issuer:  cert.Issuer.String(),
		Serial:  serial.Format(cert.SerialNumber),
		Reason:  reason,
	}
	if !c.allow {
		return err
	}
	c.log.Warn("revocation: status unavailable, certificate allowed by policy allow-with-warning",
		"subject", err.Subject, "serial", err.Serial, "issuer", err.Issuer, "reason", reason)
	return nil
}

func revokedErr(cert *x509.Certificate, at time.Time, reason int, source string) error {
	return &RevokedError{
		Subject:   cert.Subject.String(),
		Issuer:    cert.Issuer.String(),
		Serial:    serial.Format(cert.SerialNumber),
		RevokedAt: at,
		Reason:    reason,
		Source:    source,
	}
}

// responderFor returns the OCSP responder to ask about cert, or "".
func (c *Checker) responderFor(cert *x509.Certificate) string {
	if c.ocspURL != "" {
		return c.ocspURL
	}
	return firstHTTP(cert.OCSPServer)
}

func firstHTTP(urls []string) string {
	for _, u := range urls {
		if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
			return u
		}
	}
	return ""
}
