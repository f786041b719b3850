package revocation

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// maxOCSPResponse bounds an OCSP response; real ones are a few KiB.
const maxOCSPResponse = 1 << 20

// retryAfterFailure is how soon a source that failed is tried again, if
// Refresh is longer.
const retryAfterFailure = 10 * time.Second

// newHTTPClient returns the default client for CRL and OCSP fetches: every
// phase has a deadline, and proxy variables from the environment are
// ignored (revocation traffic goes where the configuration says).
func newHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   3 * time.Second,
			ResponseHeaderTimeout: 5 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   4,
			ForceAttemptHTTP2:     true,
		},
		// Each call has a shorter context deadline; this is a backstop.
		Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("more than 3 redirects")
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to scheme %q refused", req.URL.Scheme)
			}
			return nil
		},
	}
}

// source is one configured CRL location and its refresh state.
type source struct {
	name string
	url  *url.URL // nil for a file
	// cur is the CRL in force: verified against a known CA before it was
	// stored. Nil until one is.
	cur atomic.Pointer[crlData]
	// pending is the newest CRL whose issuer was not known when it was
	// read (see crlIndex.pending); nil if none. It is never a reference
	// for what may replace it: any newer content does.
	pending atomic.Pointer[crlData]

	// Refresh state, guarded by Checker.refreshMu.
	sum           [32]byte    // content last read, accepted or not
	fi            os.FileInfo // file last read
	etag, lastMod string
	nextFetch     time.Time
	fetched       time.Time // when the last read started
	expiredLogged bool

	stats fetchStats // for Status; safe to read concurrently
}

func newSource(name string) (*source, error) {
	s := &source{name: name}
	if i := strings.Index(name, "://"); i > 0 {
		u, err := url.Parse(name)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("use a file path or an http(s) URL")
		}
		s.url = u
	} else if name == "" {
		return nil, errors.New("empty path")
	}
	return s, nil
}

// refreshSource reads s when it is due, or forced, or (a file) when it
// changed on disk, and installs its CRL if it is valid, verified and
// newer. It reports whether the CRL held changed. On any failure the CRL
// held stays.
func (c *Checker) refreshSource(ctx context.Context, s *source, force, initial bool) (changed bool, err error) {
	now := c.now()
	cur := s.cur.Load()
	if cur != nil && !now.Before(cur.nextUpdate) && !s.expiredLogged {
		s.expiredLogged = true
		c.log.Error("CRL: past its nextUpdate and no newer one loaded; the unavailable policy now applies to its CA's clients",
			"source", s.name, "issuer", cur.issuerName, "crl_number", numberString(cur.number), "next_update", cur.nextUpdate)
	}
	if p := s.pending.Load(); p != nil && p.failedOnly() {
		// The CRL held pending proved not to be the issuer's, and that
		// issuer's clients are refused meanwhile: ask the source again
		// soon rather than at the next refresh.
		s.nextFetch = minTime(s.nextFetch, s.fetched.Add(min(c.refresh, retryAfterFailure)))
	}
	if !force && now.Before(s.nextFetch) {
		if s.url != nil {
			return false, nil
		}
		// Between refreshes, a file is read again only when it changed:
		// replaced (rename, symlink swap), resized or rewritten.
		fi, err := os.Stat(s.name)
		if err != nil || (s.fi != nil && os.SameFile(s.fi, fi) && fi.Size() == s.fi.Size() && fi.ModTime().Equal(s.fi.ModTime())) {
			return false, nil
		}
	}
	s.fetched = now
	data, notModified, err := c.read(ctx, s)
	if err != nil {
		s.stats.failed(now, err)
		s.nextFetch = now.Add(min(c.refresh, retryAfterFailure))
		if cur != nil && !initial {
			c.log.Warn("CRL: fetch failed, keeping the last good CRL until its nextUpdate",
				"source", s.name, "err", err, "crl_number", numberString(cur.number), "next_update", cur.nextUpdate)
		}
		return false, err
	}
	s.nextFetch = now.Add(c.refresh)
	sum := sha256.Sum256(data)
	if notModified || (!force && cur != nil && sum == s.sum) {
		if notModified || cur.sum == sum {
			s.stats.ok(now) // not the content refused last time
		}
		return false, nil // compare content: a touched file is not reloaded
	}
	s.sum = sum
	d, err := parseCRL(s.name, data, now)
	if err == nil {
		err = c.admit(d)
	}
	if errors.Is(err, errNoKnownIssuer) {
		if cur != nil && !initial {
			err = fmt.Errorf("CRL of %s is issued by another CA than the CRL held (%s); refused, reload the configuration to change a source's CA",
				d.issuerName, cur.issuerName)
		} else {
			// Nothing can verify it yet: hold it where it decides nothing
			// until it proves itself against a verified client chain.
			s.stats.ok(now) // read and parsed; its signature is checked on first use
			s.pending.Store(d)
			c.log.Info("CRL: issuer is not a trusted CA; held pending, used for nothing until it verifies against the intermediate in a verified client chain",
				"source", s.name, "issuer", d.issuerName, "crl_number", numberString(d.number))
			return true, nil
		}
	}
	if err != nil {
		c.refused.Add(1)
		if !initial || cur != nil {
			c.log.Error("CRL: refused, keeping the CRL held", "source", s.name, "err", err,
				"crl_number", numberString(crlNumber(cur)))
		}
		s.stats.failed(now, err)
		return false, err
	}
	s.stats.ok(now)
	ok, level, why := replaces(cur, d, initial)
	if !ok {
		c.log.Log(ctx, level, "CRL: not loaded: "+why, "source", s.name,
			"crl_number", numberString(d.number), "held_crl_number", numberString(cur.number))
		return false, nil
	}
	s.cur.Store(d)
	s.pending.Store(nil) // older content than this verified CRL
	s.expiredLogged = false
	c.log.Info("CRL: loaded", "source", s.name, "issuer", d.issuerName, "crl_number", numberString(d.number),
		"this_update", d.thisUpdate, "next_update", d.nextUpdate, "revoked", len(d.entries()))
	return true, nil
}

func crlNumber(d *crlData) *big.Int {
	if d == nil {
		return nil
	}
	return d.number
}

// read returns the content of s. notModified is true when an HTTP server
// answered that the CRL held is current.
func (c *Checker) read(ctx context.Context, s *source) (data []byte, notModified bool, err error) {
	if s.url == nil {
		return c.readFile(s)
	}
	ctx, cancel := context.WithTimeout(ctx, c.fetchTO)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.name, nil)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Accept", "application/pkix-crl, application/x-pem-file;q=0.5, */*;q=0.1")
	// Ask conditionally only while what the validators describe is still
	// in force: once it is past its nextUpdate, a server that keeps
	// answering 304 would freeze it, so the full CRL is asked for.
	conditional := false
	if held := cmp.Or(s.pending.Load(), s.cur.Load()); held != nil && c.now().Before(held.nextUpdate) {
		if s.etag != "" {
			req.Header.Set("If-None-Match", s.etag)
			conditional = true
		}
		if s.lastMod != "" {
			req.Header.Set("If-Modified-Since", s.lastMod)
			conditional = true
		}
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		if conditional {
			return nil, true, nil
		}
		return nil, false, errors.New("HTTP status 304 Not Modified to a request without validators (the server must send the CRL)")
	default:
		return nil, false, fmt.Errorf("HTTP status %s", resp.Status)
	}
	if resp.ContentLength > c.maxCRLSize {
		return nil, false, fmt.Errorf("CRL of %d bytes is larger than max_crl_size (%d bytes)", resp.ContentLength, c.maxCRLSize)
	}
	data, err = readBounded(resp.Body, resp.ContentLength, c.maxCRLSize)
	if err != nil {
		return nil, false, err
	}
	s.etag, s.lastMod = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	return data, false, nil
}

// readBounded reads r to its end, refusing more than limit bytes. size,
// when known (>= 0), sizes the buffer once instead of growing it.
func readBounded(r io.Reader, size, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if size > 0 && size <= limit {
		buf.Grow(int(size) + 1)
	}
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read CRL: %w", err)
	}
	if n > limit {
		return nil, fmt.Errorf("CRL larger than max_crl_size (%d bytes)", limit)
	}
	return buf.Bytes(), nil
}

func (c *Checker) readFile(s *source) ([]byte, bool, error) {
	f, err := os.Open(s.name)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	if fi.Size() > c.maxCRLSize {
		return nil, false, fmt.Errorf("CRL file of %d bytes is larger than max_crl_size (%d bytes)", fi.Size(), c.maxCRLSize)
	}
	data, err := readBounded(f, fi.Size(), c.maxCRLSize)
	if err != nil {
		return nil, false, err
	}
	s.fi = fi
	return data, false, nil
}

// postOCSP sends an OCSP request by HTTP POST (RFC 6960 appendix A.1) and
// returns the response body.
func postOCSP(ctx context.Context, client *http.Client, responder string, req []byte) ([]byte, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, responder, bytes.NewReader(req))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/ocsp-request")
	hreq.Header.Set("Accept", "application/ocsp-response")
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxOCSPResponse+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if len(body) > maxOCSPResponse {
		return nil, fmt.Errorf("response larger than %d bytes", maxOCSPResponse)
	}
	return body, nil
}
