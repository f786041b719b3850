package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/guard"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/sanitize"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/telemetry/metrics"
	"github.com/gatehouse/gatehouse/internal/tlsconf"
)

// Stage is a decision that runs after the route, the client certificate
// and the allow rules have admitted a request, before anything reaches the
// backend: rate limits (429), request validation (400 problem+json). A
// non-nil Refusal ends the request with that answer.
type Stage interface {
	Check(ctx context.Context, ex *Exchange, r Request) *Refusal
}

// Observer sees every finished request's audit record, after it is
// complete and before it is written (metrics by route, code, decision and
// reason; duration). It must not keep rec.
type Observer interface {
	Observe(ex *Exchange, rec *telemetry.AuditRecord)
}

// Pipeline runs every request decision of every engine.
type Pipeline struct {
	// Policy returns the policy in force now. Required.
	Policy func() *Policy
	// Audit receives one record per request. If nil, records are
	// discarded.
	Audit *telemetry.Audit
	// Now returns the current time. If nil, time.Now is used.
	Now func() time.Time
	// Stages run in order after authorization (see Stage).
	Stages []Stage
	// Observers see each finished record.
	Observers []Observer
	// Metrics counts every request (in flight, by route, code, decision
	// and outcome). If nil, nothing is counted.
	Metrics *metrics.Metrics

	idOnce   sync.Once
	idPrefix string
	idSeq    atomic.Uint64
}

func (p *Pipeline) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// requestID returns a process-unique id: a random prefix drawn once and a
// counter, so generating one costs an atomic add and a small format.
func (p *Pipeline) requestID() string {
	p.idOnce.Do(func() {
		var b [8]byte
		rand.Read(b[:])
		p.idPrefix = hex.EncodeToString(b[:])
	})
	var buf [40]byte
	out := append(buf[:0], p.idPrefix...)
	out = append(out, '-')
	out = strconv.AppendUint(out, p.idSeq.Add(1), 16)
	return string(out)
}

var exchangePool = sync.Pool{New: func() any { return new(Exchange) }}

// Exchange is one request's decisions and its audit record. It is not safe
// for concurrent use; an engine owns it from Begin to Release.
type Exchange struct {
	p      *Pipeline
	conn   *Conn
	policy *Policy
	v      *Verification
	start  time.Time

	method, authority, target, proto string
	host, port                       string // parsed authority
	path, query                      string // normalized path, raw query
	route                            *Route
	requestID                        string
	upgrade                          string // the upgrade token passed, "" for none
	connTokens                       []string
	contentLength                    int64
	visit                            int
	recheckMu                        sync.Mutex
	lastCheck                        time.Time
	upgradeRaw                       string
	sink                             HeaderSink

	rec      telemetry.AuditRecord
	body     *limitedBody
	finished bool
	// headers counts the request's header fields (limits.max_headers).
	headers int
	// ticket holds the request's in-flight slots until Finish.
	ticket  guard.Ticket
	outcome metrics.Outcome // what the refusal named (metrics.ByStatus if none)
}

// Begin starts an exchange for r on c.
func (p *Pipeline) Begin(c *Conn, r Request) *Exchange {
	ex := exchangePool.Get().(*Exchange)
	*ex = Exchange{p: p, conn: c, policy: p.Policy(), start: p.now(), connTokens: ex.connTokens[:0]}
	ex.v = c.Verified()
	// Copied: these outlive the engine's buffers in the audit record of
	// a tunnel or a streamed response.
	ex.method = strings.Clone(r.Method())
	ex.authority = strings.Clone(r.Authority())
	ex.target = r.Target()
	ex.proto = r.Proto()
	ex.contentLength = r.ContentLength()
	ex.requestID = p.requestID()
	if p.Metrics != nil {
		p.Metrics.Begin()
	}
	return ex
}

// Release returns the exchange to the pool. It must not be used after.
func (ex *Exchange) Release() {
	if !ex.finished {
		ex.Finish(0, 0, "")
	}
	ex.body = nil
	ex.v, ex.conn, ex.route, ex.policy = nil, nil, nil, nil
	exchangePool.Put(ex)
}

// Accessors for engines and stages.

func (ex *Exchange) Route() *Route { return ex.route }

// Identity is the verified client, nil when none.
func (ex *Exchange) Identity() *identity.Identity {
	if ex.v == nil {
		return nil
	}
	return ex.v.ID
}
func (ex *Exchange) Conn() *Conn       { return ex.conn }
func (ex *Exchange) Method() string    { return ex.method }
func (ex *Exchange) Host() string      { return ex.host }
func (ex *Exchange) Path() string      { return ex.path }
func (ex *Exchange) Query() string     { return ex.query }
func (ex *Exchange) RequestID() string { return ex.requestID }
func (ex *Exchange) Upgrade() string   { return ex.upgrade }
func (ex *Exchange) HSTS() string      { return ex.policy.HSTS }

// BodyIdle is the per-read bound on the request body (0: engine default).
func (ex *Exchange) BodyIdle() time.Duration { return ex.policy.BodyIdle }
func (ex *Exchange) ContentLength() int64    { return ex.contentLength }

// URI is the request target sent to the backend: the normalized path,
// then the query as the client sent it.
func (ex *Exchange) URI() string {
	if ex.query == "" {
		return ex.path
	}
	return ex.path + "?" + ex.query
}

// SetLimit records which limit refused or admitted the request and for
// which key (rate-limit stages).
func (ex *Exchange) SetLimit(limit, key string) { ex.rec.Limit, ex.rec.LimitKey = limit, key }

// Decide runs every decision for the request, in the order of DESIGN.md's
// request path. It returns nil when the request may go to the backend,
// else the refusal to answer with (already recorded for the audit).
func (ex *Exchange) Decide(ctx context.Context, r Request) *Refusal {
	if rf := ex.decide(ctx, r); rf != nil {
		ex.refused(rf)
		return rf
	}
	return nil
}

func (ex *Exchange) decide(ctx context.Context, r Request) *Refusal {
	pol := ex.policy
	if ex.v == nil {
		return internalError("connection has no verification")
	}
	if rf := ex.current(ctx); rf != nil {
		return rf
	}

	// The request target, split without decoding anything: origin form,
	// absolute form (whose authority must agree with Host), or asterisk
	// form.
	tgt, err := sanitize.SplitTarget(ex.target)
	if err != nil {
		ex.rec.Path = ex.target
		return badRequest("bad request target", "request target "+strconv.Quote(ex.target)+": "+err.Error())
	}
	rawPath, authority := tgt.Path, ex.authority
	ex.query = tgt.Query
	if tgt.Asterisk {
		rawPath = "*"
	}
	ex.rec.Path = rawPath
	if authority == "" && tgt.Authority == "" {
		return badRequest("missing host", "no Host header or :authority")
	}
	if authority == "" {
		authority = tgt.Authority
	}
	host, port, err := sanitize.Authority(authority)
	if err != nil {
		return badRequest("bad host", err.Error())
	}
	if tgt.Authority != "" {
		// RFC 9112 section 3.2.2 lets the target's authority win; two
		// that disagree are a smuggling attempt, refused (HAProxy does).
		th, tp, err := sanitize.Authority(tgt.Authority)
		if err != nil || th != host || tp != port {
			return badRequest("bad request", "absolute-form authority "+strconv.Quote(tgt.Authority)+" differs from Host "+strconv.Quote(authority))
		}
	}
	ex.host, ex.port = host, port

	// The SNI name chose the certificate and the handshake's policy; a
	// Host that would have chosen another virtual host must reconnect
	// (DESIGN.md invariant 5).
	if sni := ex.conn.SNI; sni != "" && sni != host {
		return &Refusal{Status: 421, Public: "misdirected request", Decision: "deny", Outcome: metrics.MisdirectedSNIHostOutcome,
			Reason: "Host " + strconv.Quote(host) + " differs from TLS SNI " + strconv.Quote(sni)}
	} else if sni == "" && pol.VHost(host) != 0 {
		return &Refusal{Status: 421, Public: "misdirected request", Decision: "deny", Outcome: metrics.MisdirectedNoSNIOutcome,
			Reason: "no SNI sent, and Host " + strconv.Quote(host) + " selects a different virtual host than the default"}
	}

	if rawPath == "*" {
		// OPTIONS * asks about the server, not a resource: no backend is
		// asked on the client's behalf.
		if ex.method != "OPTIONS" {
			return badRequest("bad request target", "asterisk-form target with method "+ex.method)
		}
		return &Refusal{Status: 400, Public: "bad request target", Decision: "deny", Reason: "OPTIONS * is not forwarded"}
	}
	path, err := sanitize.Path(rawPath)
	if err != nil {
		rf := badRequest("bad request path", "path "+strconv.Quote(rawPath)+": "+err.Error())
		rf.Outcome = metrics.RefusedPath
		return rf
	}
	ex.path = path
	ex.rec.Path = path

	rt := pol.Match(host, path)
	if rt == nil {
		return &Refusal{Status: 404, Public: "no route", Decision: "deny",
			Reason: "no route for host " + strconv.Quote(host) + " path " + strconv.Quote(path)}
	}
	ex.route = rt
	ex.rec.Route = rt.Name
	if rt.Requires {
		if ex.v.ID == nil {
			return &Refusal{Status: 403, Public: "client certificate required", Decision: "deny", Outcome: metrics.DeniedNoCertificate,
				Reason: "route requires a client certificate and none was presented"}
		}
		if d := ex.v.authorize(rt); !d.Allowed {
			return &Refusal{Status: 403, Public: "forbidden", Decision: "deny", Outcome: metrics.DeniedNoRule, Reason: d.Reason}
		}
	}
	if rt.Methods != nil && !rt.Methods[ex.method] {
		return &Refusal{Status: 405, Public: "method not allowed", Decision: "deny",
			Reason:  "method " + strconv.Quote(ex.method) + " not in the route's methods",
			Headers: [][2]string{{"Allow", rt.Allow}}}
	}
	if ex.contentLength > rt.MaxBody {
		return &Refusal{Status: 413, Public: "request body too large", Decision: "deny",
			Reason: "Content-Length " + strconv.FormatInt(ex.contentLength, 10) + " exceeds max_body"}
	}
	if rf := ex.headerPass(r); rf != nil {
		return rf
	}
	if rf := ex.limits(r); rf != nil {
		return rf
	}
	for _, s := range ex.p.Stages {
		if rf := s.Check(ctx, ex, r); rf != nil {
			return rf
		}
	}
	ex.rec.Decision = "allow"
	return nil
}

// current holds an open connection to the policy in force now: after a
// reload the chain is verified again under the new policy (a removed CA no
// longer admits anyone); a certificate that expired or was revoked while
// the connection stayed open is refused. Without a reload this costs a
// pointer comparison, a time comparison per chain certificate and the
// revocation lookups (map lookups while statuses are cached).
func (ex *Exchange) current(ctx context.Context) *Refusal {
	pol, v := ex.policy, ex.v
	if v.Policy != pol {
		id, err := pol.Verifier.Verify(ex.conn.Peer)
		if err != nil && !errors.Is(err, tlsconf.ErrNoCertificate) {
			if pol.RefuseInHTTP {
				ex.rec.Path = ex.target
				return outcome(certRefusedHTTP(fmt.Errorf("after reload: %w", err)), metrics.DeniedReverify)
			}
			return certRefused("after reload: "+err.Error(), metrics.DeniedReverify)
		}
		nv := NewVerification(pol, id)
		if err == nil {
			ex.conn.verified.CompareAndSwap(v, nv)
		}
		ex.v = nv
	}
	if ex.v.Refused != nil {
		// The handshake completed only so that the client can read why
		// its certificate was refused; no request goes further.
		ex.rec.Path = ex.target
		return outcome(certRefusedHTTP(ex.v.Refused), metrics.DeniedCertificate)
	}
	id := ex.v.ID
	if id == nil {
		return nil
	}
	now := ex.start
	for _, c := range id.Chain {
		if now.After(c.NotAfter) {
			rf := certRefused("certificate "+strconv.Quote(c.Subject.String())+" (serial "+identity.SerialHex(c.SerialNumber)+
				") expired at "+c.NotAfter.UTC().Format(time.RFC3339)+" during the connection", metrics.DeniedExpired)
			if pol.RefuseInHTTP {
				rf.Status, rf.Code = 400, string(tlsconf.CodeExpired)
			}
			return rf
		}
	}
	// Revocation is checked on every request, not only at the handshake,
	// so a certificate revoked while its keep-alive or HTTP/2 connection
	// stays open is refused at its next request.
	if pol.Revocation != nil {
		if err := pol.Revocation.Check(ctx, id.Chain); err != nil {
			if pol.RefuseInHTTP {
				return outcome(certRefusedHTTP(err), revocationOutcome(err))
			}
			return certRefused(err.Error(), revocationOutcome(err))
		}
	}
	return nil
}

// Recheck holds a long-lived exchange (a tunnel) to the policy in force
// now, as every request is: after a reload the chain is verified again,
// and expiry and revocation are checked. It is safe to call from another
// goroutine than the one serving the exchange, one call at a time.
func (ex *Exchange) Recheck(ctx context.Context) error {
	ex.recheckMu.Lock()
	defer ex.recheckMu.Unlock()
	saved := ex.start
	ex.policy, ex.start = ex.p.Policy(), ex.p.now()
	ex.lastCheck = ex.start
	rf := ex.current(ctx)
	ex.start = saved
	if rf != nil {
		return errors.New(rf.Reason)
	}
	return nil
}

// RecheckEvery is how often a long-lived response or tunnel checks its
// client again (Recheck).
const RecheckEvery = time.Second

// RecheckDue reports whether a long response should call Recheck now (at
// most every RecheckEvery); streaming engines ask it on each body read.
func (ex *Exchange) RecheckDue() bool {
	last := ex.lastCheck
	if last.IsZero() {
		last = ex.start
	}
	return ex.p.now().Sub(last) >= RecheckEvery
}

// headerPass reads the headers the decisions need: Connection tokens (the
// names they nominate are not forwarded) and Upgrade (only a protocol the
// route names passes; h2c never).
func (ex *Exchange) headerPass(r Request) *Refusal {
	ex.visit, ex.upgradeRaw = visitPass, ""
	r.VisitHeaders(ex)
	upgrade := ex.upgradeRaw
	if upgrade == "" || ex.proto != "HTTP/1.1" {
		return nil
	}
	nominated := false
	for _, t := range ex.connTokens {
		if t == "upgrade" {
			nominated = true
		}
	}
	if !nominated {
		return nil
	}
	// One protocol only; a list or anything the route does not name is
	// not passed, and the request goes on as a plain request (RFC 9110
	// section 7.8 lets a server ignore Upgrade).
	tok := strings.ToLower(trimOWS(upgrade))
	if tok == "h2c" || strings.Contains(tok, "h2c") {
		ex.rec.Reason = "upgrade to h2c refused"
		return nil
	}
	if ex.route.Upgrades[tok] && ex.method == "GET" {
		ex.upgrade = tok
		return nil
	}
	ex.rec.Reason = "upgrade " + strconv.Quote(tok) + " not allowed on this route"
	return nil
}

// Header visits: the exchange is its own HeaderVisitor, so that visiting
// the headers allocates no closure.
const (
	visitPass = iota
	visitWrite
)

// VisitHeader implements HeaderVisitor for headerPass and WriteHeaders.
func (ex *Exchange) VisitHeader(name, value string) bool {
	if ex.visit == visitWrite {
		if ex.policy.dropRequestHeader(name) {
			return true
		}
		for _, t := range ex.connTokens {
			if equalFold(name, t) {
				return true
			}
		}
		ex.sink.AddHeader(name, value)
		return true
	}
	ex.headers++ // limits.max_headers
	switch {
	case equalFold(name, "connection"):
		for value != "" {
			var tok string
			tok, value = cutComma(value)
			if tok != "" {
				ex.connTokens = append(ex.connTokens, foldToken(tok))
			}
		}
	case equalFold(name, "upgrade"):
		if ex.upgradeRaw != "" {
			ex.upgradeRaw += ", "
		}
		ex.upgradeRaw += value
	}
	return true
}

// WriteHeaders writes the backend request's headers to dst: the client's
// headers minus hop-by-hop and framing headers, the names its Connection
// header nominates, and every spelling of identity and forwarding headers;
// then gatehouse's own X-Forwarded-*, X-Request-Id and identity headers,
// which nothing the client sent can remove. Host and framing are the
// engine's to set.
func (ex *Exchange) WriteHeaders(r Request, dst HeaderSink) {
	ex.visit, ex.sink = visitWrite, dst
	r.VisitHeaders(ex)
	ex.sink = nil
	if ex.upgrade != "" {
		dst.AddHeader("Connection", "Upgrade")
		dst.AddHeader("Upgrade", ex.upgrade)
	}
	dst.AddHeader("X-Forwarded-For", ex.conn.RemoteIP)
	dst.AddHeader("X-Forwarded-Host", ex.forwardedHost())
	dst.AddHeader("X-Forwarded-Proto", "https")
	dst.AddHeader("X-Request-Id", ex.requestID)
	for _, h := range ex.v.Headers {
		dst.AddHeader(h[0], h[1])
	}
}

// forwardedHost is the normalized host the request was routed by
// (bracketed when it is an IPv6 address), never the raw Host header.
func (ex *Exchange) forwardedHost() string {
	if strings.IndexByte(ex.host, ':') >= 0 {
		return "[" + ex.host + "]"
	}
	return ex.host
}
