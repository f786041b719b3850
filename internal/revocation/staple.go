package revocation

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/serial"
	"golang.org/x/crypto/ocsp"
)

// Defaults for the zero values of StaplerOptions.
const (
	DefaultStapleTimeout = 10 * time.Second
	DefaultStapleRetry   = time.Minute
)

// StaplerOptions configures a Stapler. The zero value is usable.
type StaplerOptions struct {
	// HTTPClient queries the responders. If nil, a client with bounded
	// timeouts that ignores proxy settings from the environment.
	HTTPClient *http.Client
	// Timeout bounds one OCSP exchange. If zero, DefaultStapleTimeout.
	Timeout time.Duration
	// RetryInterval is how soon a failed fetch is tried again. If zero,
	// DefaultStapleRetry.
	RetryInterval time.Duration
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
	// Log receives fetch problems. If nil, slog.Default().
	Log *slog.Logger
	// Issuers are candidate issuers for a leaf whose chain does not carry
	// its issuer (a leaf signed directly by a root, which is never served).
	// If nil, only the served chain is searched.
	Issuers []*x509.Certificate
	// Prev is the stapler being replaced by a reload: its current
	// responses for identical certificates are reused rather than fetched
	// again. If nil, every response is fetched.
	Prev *Stapler
}

// Stapler keeps a current OCSP response for each of the gateway's own
// certificates that names a responder and carries its issuer in its
// chain. It is safe for concurrent use; Run must run for responses to be
// renewed.
type Stapler struct {
	items     []*stapleItem
	client    *http.Client
	ownClient bool
	timeout   time.Duration
	retry     time.Duration
	now       func() time.Time
	log       *slog.Logger
}

type stapleItem struct {
	cert         tls.Certificate // as configured, without a staple
	leaf, issuer *x509.Certificate
	responder    string // "" when the certificate cannot be stapled
	cur          atomic.Pointer[staple]
	next         time.Time // when to fetch again; owned by NewStapler, then Run
}

// staple is a verified good response and the certificate carrying it.
type staple struct {
	der                    []byte
	thisUpdate, nextUpdate time.Time
	cert                   *tls.Certificate
}

// NewStapler prepares stapling for certs (each a leaf followed by its
// chain) and fetches a first response for every certificate that can be
// stapled, concurrently, bounded by ctx and the timeout. A certificate
// that cannot be stapled, or whose responder fails, is served without a
// staple; the reasons are logged.
func NewStapler(ctx context.Context, certs []tls.Certificate, opts StaplerOptions) *Stapler {
	s := &Stapler{
		client:  opts.HTTPClient,
		timeout: cmp.Or(opts.Timeout, DefaultStapleTimeout),
		retry:   cmp.Or(opts.RetryInterval, DefaultStapleRetry),
		now:     opts.Now,
		log:     opts.Log,
	}
	if s.client == nil {
		s.client, s.ownClient = newHTTPClient(), true
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	now := s.now()
	var wg sync.WaitGroup
	for i, tc := range certs {
		it := &stapleItem{cert: tc}
		it.cert.OCSPStaple = nil
		s.items = append(s.items, it)
		if err := it.prepare(opts.Issuers); err != nil {
			s.log.Info("OCSP staple: certificate served without a staple", "index", i, "subject", subjectOf(it), "reason", err)
			continue
		}
		if st := opts.Prev.find(it.leaf); st != nil && now.Before(st.nextUpdate) {
			it.install(st.der, st.thisUpdate, st.nextUpdate)
			it.next = s.refreshTime(st, now)
			continue
		}
		wg.Go(func() { s.fetch(ctx, it) })
	}
	wg.Wait()
	return s
}

func subjectOf(it *stapleItem) string {
	if it.leaf != nil {
		return it.leaf.Subject.String()
	}
	return ""
}

func (it *stapleItem) prepare(issuers []*x509.Certificate) error {
	if len(it.cert.Certificate) == 0 {
		return errors.New("empty certificate")
	}
	leaf := it.cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(it.cert.Certificate[0]); err != nil {
			return fmt.Errorf("parse certificate: %w", err)
		}
	}
	it.leaf = leaf
	issuer, err := findIssuer(leaf, it.cert.Certificate[1:], issuers)
	if err != nil {
		return err
	}
	it.issuer = issuer
	if it.responder = firstHTTP(leaf.OCSPServer); it.responder == "" {
		return errors.New("it names no OCSP responder")
	}
	return nil
}

// findIssuer returns the certificate that signed leaf: the next one in
// the served chain, else one of the candidates whose subject is the
// leaf's issuer and whose key verifies the leaf's signature.
func findIssuer(leaf *x509.Certificate, chain [][]byte, candidates []*x509.Certificate) (*x509.Certificate, error) {
	if len(chain) > 0 {
		issuer, err := x509.ParseCertificate(chain[0])
		if err != nil {
			return nil, fmt.Errorf("parse issuer: %w", err)
		}
		if err := leaf.CheckSignatureFrom(issuer); err != nil {
			return nil, fmt.Errorf("the second certificate of the chain did not issue the first: %w", err)
		}
		return issuer, nil
	}
	for _, c := range candidates {
		if bytes.Equal(c.RawSubject, leaf.RawIssuer) && leaf.CheckSignatureFrom(c) == nil {
			return c, nil
		}
	}
	return nil, errors.New("its issuer is neither in the chain nor among the trusted CAs")
}

// find returns s's current staple for leaf, or nil.
func (s *Stapler) find(leaf *x509.Certificate) *staple {
	if s == nil {
		return nil
	}
	for _, it := range s.items {
		if it.leaf != nil && it.leaf.Equal(leaf) {
			return it.cur.Load()
		}
	}
	return nil
}

func (it *stapleItem) install(der []byte, thisUpdate, nextUpdate time.Time) {
	c := it.cert
	c.OCSPStaple = der
	it.cur.Store(&staple{der: der, thisUpdate: thisUpdate, nextUpdate: nextUpdate, cert: &c})
}

// refreshTime is when to renew st: at the half of its validity, or, when
// a responder hands out an answer already past that, halfway to its end;
// never sooner than a second from now.
func (s *Stapler) refreshTime(st *staple, now time.Time) time.Time {
	t := st.thisUpdate.Add(st.nextUpdate.Sub(st.thisUpdate) / 2)
	if !t.After(now) {
		t = now.Add(st.nextUpdate.Sub(now) / 2)
	}
	return maxTime(t, now.Add(time.Second))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// fetch queries the responder for it and installs a verified good answer.
// On failure the current staple stays until its nextUpdate (Staple stops
// returning it then); a revoked answer removes it at once.
func (s *Stapler) fetch(ctx context.Context, it *stapleItem) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := queryOCSP(ctx, s.client, it.leaf, it.issuer, it.responder, s.now)
	now := s.now()
	if err == nil && resp.Status != ocsp.Good {
		it.cur.Store(nil)
		it.next = now.Add(s.retry)
		s.log.Error("OCSP staple: the responder says the gateway's certificate is revoked; not stapling it",
			"subject", it.leaf.Subject.String(), "serial", serial.Format(it.leaf.SerialNumber), "responder", it.responder,
			"revoked_at", resp.RevokedAt, "reason", ReasonString(resp.RevocationReason))
		return
	}
	if err != nil {
		it.next = now.Add(s.retry)
		if cur := it.cur.Load(); cur != nil && now.Before(cur.nextUpdate) {
			s.log.Warn("OCSP staple: fetch failed, keeping the current response until its nextUpdate",
				"subject", it.leaf.Subject.String(), "responder", it.responder, "next_update", cur.nextUpdate, "err", err)
		} else {
			s.log.Warn("OCSP staple: fetch failed, serving the certificate without a staple",
				"subject", it.leaf.Subject.String(), "responder", it.responder, "err", err)
		}
		return
	}
	next := resp.NextUpdate
	if next.IsZero() {
		next = now.Add(ocspDefaultTTL)
	}
	it.install(resp.Raw, resp.ThisUpdate, next)
	it.next = s.refreshTime(it.cur.Load(), now)
}

// Run renews responses before they expire until ctx is done.
func (s *Stapler) Run(ctx context.Context) {
	if s.ownClient {
		defer s.client.CloseIdleConnections()
	}
	for {
		t := time.NewTimer(s.refreshDue(ctx))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// refreshDue fetches the responses that are due and returns how long to
// wait for the next one (at least a second, at most an hour).
func (s *Stapler) refreshDue(ctx context.Context) time.Duration {
	wait := time.Hour
	for _, it := range s.items {
		if it.responder == "" || ctx.Err() != nil {
			continue
		}
		if !s.now().Before(it.next) {
			s.fetch(ctx, it)
		}
		wait = min(wait, it.next.Sub(s.now()))
	}
	return max(wait, time.Second)
}

// Staple returns the current good response for certificate i, or nil: no
// responder, no response yet, or the last one past its nextUpdate. It
// never returns a stale, unverified or non-good response.
func (s *Stapler) Staple(i int) []byte {
	if st := s.current(i); st != nil {
		return st.der
	}
	return nil
}

// Certificate returns certificate i carrying its current staple (or none,
// as Staple decides), for a GetCertificate callback. The result is shared:
// do not modify it.
func (s *Stapler) Certificate(i int) *tls.Certificate {
	if i < 0 || i >= len(s.items) {
		return nil
	}
	if st := s.current(i); st != nil {
		return st.cert
	}
	return &s.items[i].cert
}

func (s *Stapler) current(i int) *staple {
	if i < 0 || i >= len(s.items) {
		return nil
	}
	st := s.items[i].cur.Load()
	if st == nil || !s.now().Before(st.nextUpdate) {
		return nil
	}
	return st
}
