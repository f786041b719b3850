package gateway

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/sanitize"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/tlsconf"
)

// reqState is one request's decisions, shared by the handler, Rewrite,
// the proxy's error handler and the audit record.
type reqState struct {
	route           *route
	path            string // normalized escaped path, matched and forwarded
	host            string // normalized Host, without port: routed and forwarded
	id              *identity.Identity
	identityHeaders http.Header
	status          int
	reason          string // why the request was refused or failed (logs only)
}

type reqStateKey struct{}

func stateFrom(ctx context.Context) *reqState {
	st, _ := ctx.Value(reqStateKey{}).(*reqState)
	if st == nil {
		st = &reqState{} // never nil, so error paths need no checks
	}
	return st
}

// ServeHTTP is the request path: route by host and normalized path,
// SNI/Host check, client certificate requirement, authorization, limits,
// identity headers, backend, audit record.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	info, _ := r.Context().Value(connInfoKey{}).(*connInfo)
	v := (*verification)(nil)
	if info != nil {
		v = info.verified.Load()
	}
	if v == nil {
		// Only reachable if the handler is mounted outside Serve.
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	snap := s.snap.Load()
	st := &reqState{id: v.id, identityHeaders: v.headers}
	rec := &statusRecorder{ResponseWriter: w}
	w.Header().Set("Strict-Transport-Security", snap.hsts)
	defer func() { s.auditRequest(r, st, rec, start) }()

	if err := s.current(info, v, snap, r, st); err != nil {
		st.status, st.reason = http.StatusForbidden, err.Error()
		writeError(rec, http.StatusForbidden, "client certificate not accepted")
		return
	}
	s.serve(rec, r, snap, info, st)
}

// current holds an open connection to the policy in force now: after a
// reload the chain is verified again under the new snapshot (a removed
// CA no longer admits anyone); a certificate that expired or was revoked
// while the connection stayed open is refused. Without a reload this
// costs a pointer comparison, a time comparison per chain certificate and
// the revocation lookups (map lookups while statuses are cached).
func (s *Server) current(info *connInfo, v *verification, snap *snapshot, r *http.Request, st *reqState) error {
	if v.snap != snap {
		var peer []*x509.Certificate
		if r.TLS != nil {
			peer = r.TLS.PeerCertificates
		}
		id, err := snap.verifier.Verify(peer)
		if err != nil && !errors.Is(err, tlsconf.ErrNoCertificate) {
			return fmt.Errorf("after reload: %w", err)
		}
		nv := newVerification(snap, id)
		if err == nil {
			info.verified.CompareAndSwap(v, nv)
		}
		st.id, st.identityHeaders = nv.id, nv.headers
	}
	if st.id != nil {
		now := s.now()
		for _, c := range st.id.Chain {
			if now.After(c.NotAfter) {
				return fmt.Errorf("certificate %q (serial %s) expired at %s during the connection",
					c.Subject, c.SerialNumber.Text(16), c.NotAfter.UTC().Format(time.RFC3339))
			}
		}
		// Revocation is checked on every request, not only at the
		// handshake, so a certificate revoked while its keep-alive or
		// HTTP/2 connection stays open is refused at its next request.
		if snap.revocation != nil {
			if err := snap.revocation.Check(r.Context(), st.id.Chain); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, snap *snapshot, info *connInfo, st *reqState) {
	refuse := func(status int, public, reason string) {
		st.status, st.reason = status, reason
		writeError(w, status, public)
	}
	// The raw target, not r.URL.EscapedPath(): net/url re-encodes the
	// decoded path when the raw one holds a byte it escapes differently,
	// and %2e or %2f would then arrive here decoded.
	target, err := sanitize.SplitTarget(r.RequestURI)
	if err != nil {
		refuse(http.StatusBadRequest, "bad request target", "request target "+strconv.Quote(r.RequestURI)+": "+err.Error())
		return
	}
	path, err := sanitize.Path(target.Path)
	if err != nil {
		refuse(http.StatusBadRequest, "bad request path", "path "+strconv.Quote(target.Path)+": "+err.Error())
		return
	}
	st.path = path
	host, _, err := sanitize.Authority(r.Host)
	if err != nil {
		refuse(http.StatusBadRequest, "bad host", err.Error())
		return
	}
	st.host = host
	// The SNI name chose the certificate and the handshake's policy; a
	// Host that would have chosen another virtual host must reconnect
	// (DESIGN.md invariant 5).
	if info.sni != "" && info.sni != host {
		refuse(http.StatusMisdirectedRequest, "misdirected request", "Host "+strconv.Quote(host)+" differs from TLS SNI "+strconv.Quote(info.sni))
		return
	}
	if info.sni == "" && snap.vhost(host) != 0 {
		refuse(http.StatusMisdirectedRequest, "misdirected request", "no SNI sent, and Host "+strconv.Quote(host)+" selects a different virtual host than the default")
		return
	}
	rt, err := snap.match(host, path)
	if err != nil {
		refuse(http.StatusNotFound, "no route", "no route for host "+strconv.Quote(host)+" path "+strconv.Quote(path))
		return
	}
	st.route = rt
	if rt.requires {
		if st.id == nil {
			refuse(http.StatusForbidden, "client certificate required", "route requires a client certificate and none was presented")
			return
		}
		if d := rt.policy.Evaluate(st.id); !d.Allowed {
			refuse(http.StatusForbidden, "forbidden", d.Reason)
			return
		}
	}
	if rt.methods != nil && !rt.methods[r.Method] {
		w.Header().Set("Allow", rt.allow)
		refuse(http.StatusMethodNotAllowed, "method not allowed", "method "+r.Method+" not in the route's methods")
		return
	}
	if r.ContentLength > rt.maxBody {
		refuse(http.StatusRequestEntityTooLarge, "request body too large", "Content-Length "+strconv.FormatInt(r.ContentLength, 10)+" exceeds max_body")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, rt.maxBody)
	rt.proxy.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), reqStateKey{}, st)))
}

// identityHeaders returns the headers that carry the verified identity to
// the backend, in the configured formats (nil when none is configured).
func identityHeaders(snap *snapshot, id *identity.Identity) http.Header {
	if !snap.xfcc && !snap.rfc9440 {
		return nil
	}
	h := http.Header{}
	if snap.xfcc {
		h.Set("X-Forwarded-Client-Cert", identity.XFCC(id))
	}
	if snap.rfc9440 {
		cert, chain := identity.RFC9440(id)
		h.Set("Client-Cert", cert)
		if chain != "" {
			h.Set("Client-Cert-Chain", chain)
		}
	}
	return h
}

// writeError writes the short JSON error clients get; the reason stays in
// the logs (DESIGN.md invariant 8).
func writeError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Error  string `json:"error"`
		Status int    `json:"status"`
	}{msg, status})
}

func (s *Server) auditRequest(r *http.Request, st *reqState, rec *statusRecorder, start time.Time) {
	status := rec.status
	if st.status == 499 {
		status = 499
	}
	if status == 0 {
		status = http.StatusOK
	}
	now := s.now()
	ar := telemetry.AuditRecord{
		Time:     now,
		Event:    "request",
		Remote:   r.RemoteAddr,
		Method:   r.Method,
		Host:     r.Host,
		Path:     st.path,
		Proto:    r.Proto,
		Status:   status,
		BytesIn:  r.ContentLength,
		BytesOut: rec.bytes,
		Duration: now.Sub(start),
		Decision: "allow",
	}
	if ar.BytesIn < 0 {
		ar.BytesIn = 0
	}
	if st.route != nil {
		ar.Route = st.route.name
	}
	if st.id != nil {
		ar.Subject = st.id.Subject()
		ar.Serial = st.id.Serial()
		ar.Issuer = st.id.IssuerName()
		ar.Fingerprint = st.id.Fingerprint()
		ar.SANs = sanList(st.id)
		for _, u := range st.id.URIs() {
			if u.Scheme == "spiffe" {
				ar.SPIFFE = u.String()
				break
			}
		}
	}
	if st.reason != "" {
		ar.Reason = st.reason
		ar.Decision = "deny"
		if status >= 500 || status == 499 {
			ar.Decision = "error"
		}
	}
	s.audit.Write(&ar)
}

// statusRecorder records the status and size of a response. Unwrap lets
// http.ResponseController reach Flush and Hijack (streaming, WebSocket).
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 { // 1xx are interim
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// sanList returns the leaf's SANs as typed strings ("URI:...", "DNS:...").
func sanList(id *identity.Identity) []string {
	var out []string
	for _, u := range id.URIs() {
		out = append(out, "URI:"+u.String())
	}
	for _, d := range id.DNSNames() {
		out = append(out, "DNS:"+d)
	}
	for _, e := range id.Emails() {
		out = append(out, "email:"+e)
	}
	for _, ip := range id.IPs() {
		out = append(out, "IP:"+ip.String())
	}
	return out
}
