package pipeline

import (
	"context"
	"crypto/x509"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/guard"
	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/sanitize"
	"github.com/gatehouse/gatehouse/internal/telemetry/metrics"
	"github.com/gatehouse/gatehouse/internal/tlsconf"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// Revocation checks a verified chain against CRLs and OCSP. It must answer
// from cached data when that decides (DESIGN.md invariant 11).
type Revocation interface {
	Check(ctx context.Context, chain []*x509.Certificate) error
}

// Policy is everything the request path decides with, built once from one
// configuration and never changed afterwards. A reload builds a new Policy;
// a connection verified under an older one is verified again at its next
// request.
type Policy struct {
	// Routes in any order; NewPolicy sorts them into match order.
	Routes []*Route
	// CertNames are the DNS names of each served certificate, index 0 the
	// default, to tell which virtual host a name selects.
	CertNames [][]string
	// HSTS is the Strict-Transport-Security value every response carries.
	HSTS string
	// XFCC and RFC9440 select the identity header formats sent to backends.
	XFCC, RFC9440 bool
	// Verifier verifies client chains. Required.
	Verifier *tlsconf.Verifier
	// Revocation is nil when neither CRL nor OCSP is configured.
	Revocation Revocation
	// BodyIdle bounds each read of a request body; engines apply it as a
	// read deadline. MinBodyRate (bytes per second, 0 for none) is checked
	// by Exchange.Body once BodyIdle has passed since the body began.
	BodyIdle    time.Duration
	MinBodyRate int64
	// RefuseInHTTP answers a presented but refused client certificate
	// with 400 and its reason code on every request of the connection
	// (client_auth.refusal: http), instead of a handshake alert.
	RefuseInHTTP bool
	// Stripper removes identity, origin and forwarding headers in every
	// spelling, plus configured extras. If nil, the built-in lists apply.
	Stripper *sanitize.HeaderStripper
	// Guard holds the limits (URL, header and query bounds; rate limits,
	// in-flight bounds) of this configuration. If nil, none apply.
	Guard *guard.Guard

	// renders caches what NewVerification renders per certificate.
	renders identity.Memo[*rendered]
}

// Route is a provisioned route.
type Route struct {
	Name string
	// Host is normalized: "" for any host, "*.example.com" for a wildcard.
	Host string
	Path string
	// Upstream is the backend client; it knows no policy.
	Upstream *upstream.Client
	// Requires is true when a verified client certificate is required.
	Requires bool
	// Authz is evaluated on the verified identity when Requires is true.
	Authz *authz.Policy
	// Methods is nil for any method; Allow is its 405 Allow header.
	Methods map[string]bool
	Allow   string
	// MaxBody bounds the request body in bytes (413 beyond it).
	MaxBody int64
	// Upgrades are the Upgrade protocols passed to the backend, lower
	// case. h2c is never passed, whatever this says.
	Upgrades map[string]bool
	// Guard is the route's rate limit, in-flight bounds, OpenAPI validator
	// and circuit breaker. If nil, the route has none.
	Guard *guard.Route
	// Metrics is the route's metrics, resolved at provisioning. If nil,
	// Pipeline.Metrics resolves it by Name per request (slower).
	Metrics *metrics.Route
}

// NewPolicy sorts p.Routes into match order (longest path first, then the
// most specific host) and returns p.
func NewPolicy(p *Policy) *Policy {
	sort.SliceStable(p.Routes, func(i, j int) bool {
		a, b := p.Routes[i], p.Routes[j]
		if len(a.Path) != len(b.Path) {
			return len(a.Path) > len(b.Path)
		}
		return hostRank(a.Host) > hostRank(b.Host)
	})
	return p
}

func hostRank(h string) int {
	switch {
	case h == "":
		return 0
	case strings.HasPrefix(h, "*."):
		return 1
	}
	return 2
}

// Match returns the route for a normalized host and path, or nil.
func (p *Policy) Match(host, path string) *Route {
	for _, r := range p.Routes {
		if HostMatches(r.Host, host) && pathMatches(r.Path, path) {
			return r
		}
	}
	return nil
}

// HostMatches reports whether a normalized host matches a route or
// certificate pattern: "" matches any host, "*.example.com" exactly one
// more label.
func HostMatches(pattern, host string) bool {
	switch {
	case pattern == "":
		return true
	case strings.HasPrefix(pattern, "*."):
		rest, ok := strings.CutSuffix(host, pattern[1:])
		return ok && rest != "" && !strings.Contains(rest, ".")
	}
	return pattern == host
}

// pathMatches: "/orders/" matches everything below it and the bare
// "/orders" too, so a request for "/admin" can never fall through to a
// public "/" route when the protected route is "/admin/"; "/healthz"
// matches itself and what is below "/healthz/", but not "/healthzz".
func pathMatches(prefix, path string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(path, prefix) || len(prefix) > 1 && path == prefix[:len(prefix)-1]
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// VHost returns the index of the certificate crypto/tls would choose for
// name (0, the default, when none names it).
func (p *Policy) VHost(name string) int {
	if name == "" {
		return 0
	}
	for i, names := range p.CertNames {
		for _, n := range names {
			if HostMatches(n, name) {
				return i
			}
		}
	}
	return 0
}
