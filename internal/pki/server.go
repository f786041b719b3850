package pki

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/pki/store"
)

// ServerOptions configures a Server. The zero value is usable.
type ServerOptions struct {
	// Poll is how often the inventory is checked for changes made by other
	// processes (a `gatehouse ca revoke`). If zero, one second.
	Poll time.Duration
	// Logger receives one line per refused request and per refresh
	// problem. If nil, slog.Default().
	Logger *slog.Logger
	// OCSPSignerValidity is the life of the delegated OCSP signing
	// certificate the server issues itself and renews at half-life. If
	// zero, DefaultOCSPSignerValidity.
	OCSPSignerValidity time.Duration
	// DirectOCSP signs OCSP answers with the issuing CA's key itself
	// instead of a delegated OCSP signing certificate.
	DirectOCSP bool
}

// Server publishes the CA over HTTP: GET /crl (DER, or PEM with
// ?format=pem), GET /crl/root (the root's CRL, see RootCRLFile) and the OCSP responder at /ocsp (POST, and GET with the
// request in the path, RFC 6960 appendix A). The CRL is served from
// memory; it is reloaded when the inventory changes and re-signed when
// past half its lifetime, so that it never expires while the server runs.
type Server struct {
	ca   *CA
	ocsp *Responder
	log  *slog.Logger
	poll time.Duration

	crl atomic.Pointer[CRL]
	mu  sync.Mutex // serializes Refresh
	gen int64
}

// maxOCSPRequest bounds a POSTed OCSP request; real ones are ~100 bytes.
const maxOCSPRequest = 10 << 10

// NewServer prepares a server for ca, which must hold its key, and loads
// the current CRL.
func NewServer(ca *CA, opts ServerOptions) (*Server, error) {
	r, err := NewResponder(ca)
	if err != nil {
		return nil, err
	}
	if !opts.DirectOCSP {
		if err := r.Delegate(context.Background(), opts.OCSPSignerValidity); err != nil {
			return nil, fmt.Errorf("ca serve: %w", err)
		}
	}
	s := &Server{ca: ca, ocsp: r, log: opts.Logger, poll: opts.Poll, gen: -1}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.poll <= 0 {
		s.poll = time.Second
	}
	if err := s.Refresh(context.Background()); err != nil {
		return nil, err
	}
	return s, nil
}

// Refresh checks the inventory's generation and, if anything changed since
// the last look, reloads the CRL and drops cached OCSP answers. It also
// re-signs a CRL past half its lifetime. On error the last good state is
// kept.
func (s *Server) Refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A failed renewal is reported but does not hold up the CRL: the
	// current signer stays valid for half its life, retried every poll.
	renewErr := s.ocsp.RenewSigner(ctx)
	if renewErr != nil {
		renewErr = fmt.Errorf("refresh: %w", renewErr)
	}
	gen, err := s.ca.store.Generation(ctx)
	if err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	if gen == s.gen {
		if c := s.crl.Load(); c == nil || !crlStale(c, s.ca.now()) {
			return renewErr
		}
	}
	crl, err := s.ca.CurrentCRL(ctx)
	if err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	// The generation kept is the one read before the CRL: whatever
	// changed after it is looked at again at the next poll. That is
	// this refresh's own signing, if CurrentCRL signed (one reload for
	// nothing), or a revocation by another process (`ca revoke`, another
	// replica) committed during this reload, which reading the generation
	// again here would take for loaded while the CRL in hand does not
	// have it (TestReloadDuringRevocation).
	s.crl.Store(crl)
	s.ocsp.Invalidate()
	if s.gen >= 0 {
		s.log.Info("ca serve: inventory changed, CRL and OCSP refreshed", "crl_number", crl.Number, "generation", gen)
	}
	s.gen = gen
	return renewErr
}

// Serve serves HTTP on ln and polls the inventory until ctx is done, then
// shuts down gracefully. It returns nil after a shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	// A store that announces changes (PostgreSQL's NOTIFY) wakes the
	// refresh at once; the poll stays as the bound when a notification is
	// lost with its connection.
	var watch <-chan struct{}
	if w, ok := s.ca.store.(store.Watcher); ok {
		watch = w.Watch(ctx, s.log)
	}
	wg.Go(func() {
		changed := watch
		t := time.NewTicker(s.poll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case _, ok := <-changed:
				if !ok {
					changed = nil
				}
			}
			if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("ca serve: keeping the last good state", "err", err)
			}
		}
	})
	wg.Go(func() {
		<-ctx.Done()
		sctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		hs.Shutdown(sctx)
	})
	err := hs.Serve(ln)
	cancel()
	wg.Wait()
	if watch != nil {
		for range watch { // until the LISTEN connection is closed
		}
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("ca serve: %w", err)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	switch {
	case r.URL.Path == "/crl":
		s.serveCRL(w, r)
	case r.URL.Path == "/crl/root":
		s.serveRootCRL(w, r)
	case r.URL.Path == "/ocsp" || strings.HasPrefix(r.URL.Path, "/ocsp/"):
		s.serveOCSP(w, r)
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

func (s *Server) serveCRL(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	crl := s.crl.Load()
	if crl == nil {
		s.log.Error("ca serve: no CRL loaded")
		http.Error(w, "CRL unavailable", http.StatusServiceUnavailable)
		return
	}
	s.writeCRL(w, r, crl)
}

// writeCRL answers a CRL request with crl.
func (s *Server) writeCRL(w http.ResponseWriter, r *http.Request, crl *CRL) {
	body, ctype := crl.DER, "application/pkix-crl"
	switch r.URL.Query().Get("format") {
	case "", "der":
	case "pem":
		body, ctype = crl.PEM(), "application/x-pem-file"
	default:
		http.Error(w, "format must be der or pem", http.StatusBadRequest)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", "max-age=60, public, no-transform, must-revalidate")
	h.Set("ETag", `"`+strconv.FormatInt(crl.Number, 10)+`"`)
	h.Set("Last-Modified", crl.ThisUpdate.UTC().Format(http.TimeFormat))
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

func (s *Server) serveOCSP(w http.ResponseWriter, r *http.Request) {
	var (
		der []byte
		err error
	)
	switch r.Method {
	case http.MethodPost:
		if r.URL.Path != "/ocsp" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/ocsp-request" {
			s.log.Info("ca serve: OCSP request refused", "remote", r.RemoteAddr, "reason", "content type "+ct)
			http.Error(w, "content type must be application/ocsp-request", http.StatusUnsupportedMediaType)
			return
		}
		der, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxOCSPRequest))
		if err != nil {
			s.log.Info("ca serve: OCSP request refused", "remote", r.RemoteAddr, "reason", err)
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
	case http.MethodGet:
		// The base64 request is the rest of the path; net/http has already
		// undone the percent-encoding of '/', '+' and '='.
		b64 := strings.TrimPrefix(r.URL.Path, "/ocsp/")
		if len(b64) > 2*maxOCSPRequest {
			http.Error(w, "request too large", http.StatusRequestURITooLong)
			return
		}
		if der, err = base64.StdEncoding.DecodeString(b64); err != nil {
			s.log.Info("ca serve: OCSP request refused", "remote", r.RemoteAddr, "reason", "bad base64 in GET path")
			s.writeOCSP(w, r, ocspMalformed, false)
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	resp, cacheable, err := s.ocsp.respond(r.Context(), der)
	if err != nil {
		level := slog.LevelInfo
		if !errors.Is(err, ErrOCSPMalformed) && !errors.Is(err, ErrOCSPUnauthorized) {
			level = slog.LevelError
		}
		s.log.Log(r.Context(), level, "ca serve: OCSP request refused", "remote", r.RemoteAddr, "reason", err)
	}
	s.writeOCSP(w, r, resp, cacheable && r.Method == http.MethodGet)
}

var ocspMalformed = []byte{0x30, 0x03, 0x0A, 0x01, 0x01}

// writeOCSP writes an OCSP response; cacheable GET answers carry the
// RFC 5019 caching headers, with a short max-age so that HTTP caches do
// not delay a revocation.
func (s *Server) writeOCSP(w http.ResponseWriter, r *http.Request, resp []byte, cacheable bool) {
	h := w.Header()
	h.Set("Content-Type", "application/ocsp-response")
	h.Set("Content-Length", strconv.Itoa(len(resp)))
	if cacheable {
		sum := sha256.Sum256(resp)
		h.Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
		h.Set("Cache-Control", "max-age=60, public, no-transform, must-revalidate")
	} else {
		h.Set("Cache-Control", "no-store")
	}
	w.Write(resp)
}
