package config

import (
	"crypto/tls"
	"maps"

	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/sanitize"
	"github.com/gatehouse/gatehouse/internal/suitenames"
	"github.com/gatehouse/gatehouse/internal/tlsconf"
)

// Problem is one validation failure: the field's path and what is wrong.
type Problem struct {
	Field string
	Err   error
}

type problems []Problem

func (ps *problems) add(field, format string, args ...any) {
	*ps = append(*ps, Problem{Field: field, Err: fmt.Errorf(format, args...)})
}

// Validate reports every insecure or inconsistent value. It does not read
// files (provisioning does) and never changes c.
func (c *Config) Validate() []Problem {
	var ps problems
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		ps.add("listen", "%q is not host:port (use e.g. \":8443\" or \"127.0.0.1:8443\")", c.Listen)
	}
	c.validateServerTLS(&ps)
	c.validateClientAuth(&ps)
	c.validateHSTS(&ps)
	seen := map[string]bool{}
	for i, h := range c.IdentityHeaders {
		f := "identity_headers[" + strconv.Itoa(i) + "]"
		switch {
		case h != "xfcc" && h != "rfc9440":
			ps.add(f, "unknown format %q (allowed: xfcc, rfc9440)", h)
		case seen[h]:
			ps.add(f, "%q is listed twice", h)
		}
		seen[h] = true
	}
	c.validateRoutes(&ps)
	c.validateProtection(&ps)
	for _, d := range []struct {
		field string
		v     Duration
	}{
		{"timeouts.handshake", c.Timeouts.Handshake}, {"timeouts.read_header", c.Timeouts.ReadHeader},
		{"timeouts.idle", c.Timeouts.Idle}, {"timeouts.backend_connect", c.Timeouts.BackendConnect},
		{"timeouts.backend_response", c.Timeouts.BackendResponse}, {"timeouts.shutdown", c.Timeouts.Shutdown},
		{"timeouts.body_idle", c.Timeouts.BodyIdle}, {"timeouts.backend_idle", c.Timeouts.BackendIdle},
	} {
		if d.v <= 0 {
			ps.add(d.field, "must be greater than zero (a missing timeout lets slow clients hold connections forever)")
		}
	}
	if c.Limits.MaxHeaderBytes < 1<<10 || c.Limits.MaxHeaderBytes > 1<<20 {
		ps.add("limits.max_header_bytes", "must be between 1KiB and 1MiB")
	}
	if c.Limits.MinBodyRate < 0 {
		ps.add("limits.min_body_rate", "must not be negative (bytes per second, e.g. 1KiB)")
	}
	if c.Limits.MaxStreams < 1 || c.Limits.MaxStreams > 1000 {
		ps.add("limits.max_streams", "must be between 1 and 1000 (HTTP/2 streams per connection)")
	}
	if c.Limits.BackendConnsPerClient < 1 || c.Limits.BackendConnsPerClient > 1024 {
		ps.add("limits.backend_conns_per_client", "must be between 1 and 1024")
	}
	if c.Admin.Listen != "" {
		host, _, err := net.SplitHostPort(c.Admin.Listen)
		ip := net.ParseIP(host)
		switch {
		case err != nil:
			ps.add("admin.listen", "%q is not host:port (use e.g. \"127.0.0.1:9090\")", c.Admin.Listen)
		case host != "localhost" && (ip == nil || !ip.IsLoopback()) && !c.Admin.AllowNonLoopback:
			ps.add("admin.listen", "%q is not a loopback address; admin endpoints must not be exposed (use 127.0.0.1 or [::1], or set admin.allow_non_loopback: true, ideally with admin.client_ca)", c.Admin.Listen)
		}
	}
	c.validateObserve(&ps)
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		ps.add("log.level", "unknown level %q (allowed: debug, info, warn, error)", c.Log.Level)
	}
	if c.Log.Audit == "" {
		ps.add("log.audit", "must be stdout, stderr, off or a file path")
	}
	return ps
}

func (c *Config) validateServerTLS(ps *problems) {
	t := &c.ServerTLS
	if len(t.Certificates) == 0 {
		ps.add("server_tls.certificates", "at least one certificate is required (cert: chain.pem, key: key.pem)")
	}
	for i, ck := range t.Certificates {
		f := "server_tls.certificates[" + strconv.Itoa(i) + "]"
		if ck.Cert == "" {
			ps.add(f+".cert", "required: the PEM file with the certificate followed by its intermediates")
		}
		if ck.Key == "" {
			ps.add(f+".key", "required: the PEM file with the private key")
		}
		ck.Renew.validate(ps, f+".renew")
	}
	switch t.MinVersion {
	case "1.2", "1.3":
	case "1.0", "1.1", "1", "1.0.0", "ssl3", "SSLv3", "3.0":
		ps.add("server_tls.min_version", "%q is insecure: TLS below 1.2 is deprecated (RFC 8996) (use \"1.2\" or \"1.3\")", t.MinVersion)
	default:
		ps.add("server_tls.min_version", "unknown version %q (use \"1.2\" or \"1.3\")", t.MinVersion)
	}
	for i, name := range t.CipherSuites {
		if _, err := CipherSuite(name); err != nil {
			ps.add("server_tls.cipher_suites["+strconv.Itoa(i)+"]", "%w", err)
		}
	}
}

func (c *Config) validateClientAuth(ps *problems) {
	a := &c.ClientAuth
	switch a.Mode {
	case ModeRequire, ModeOptional:
		if len(a.TrustedCAs) == 0 {
			ps.add("client_auth.trusted_cas", "required with mode %s: list the PEM files of the CAs that issue client certificates (the system roots are never trusted for clients)", a.Mode)
		}
	case ModeNone:
		if len(a.TrustedCAs) > 0 {
			ps.add("client_auth.trusted_cas", "has no effect with mode none (set mode: require or optional, or remove trusted_cas)")
		}
	default:
		ps.add("client_auth.mode", "unknown mode %q (allowed: require, optional, none)", a.Mode)
	}
	for i, p := range a.TrustedCAs {
		if p == "" {
			ps.add("client_auth.trusted_cas["+strconv.Itoa(i)+"]", "empty path")
		}
	}
	r := &a.Revocation
	for i, src := range r.CRL {
		f := "client_auth.revocation.crl[" + strconv.Itoa(i) + "]"
		switch u, err := url.Parse(src); {
		case src == "":
			ps.add(f, "empty source (use a file path or an http(s) URL)")
		case err == nil && u.Scheme != "" && len(u.Scheme) > 1 && u.Scheme != "http" && u.Scheme != "https":
			ps.add(f, "scheme %q not supported (use a file path, http or https)", u.Scheme)
		case err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host == "":
			ps.add(f, "%q has no host", src)
		}
	}
	switch r.OCSP {
	case "off", "prefer", "require":
	default:
		ps.add("client_auth.revocation.ocsp", "unknown value %q (allowed: off, prefer, require)", r.OCSP)
	}
	if r.OCSPURL != "" {
		if u, err := url.Parse(r.OCSPURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ps.add("client_auth.revocation.ocsp_url", "%q is not an http(s) URL", r.OCSPURL)
		}
	}
	if a.Mode == ModeNone && (len(r.CRL) > 0 || r.OCSP != "off") {
		ps.add("client_auth.revocation", "revocation checking has no effect with mode none")
	}
	if r.Unavailable != "reject" && r.Unavailable != "allow-with-warning" {
		ps.add("client_auth.revocation.unavailable", "unknown value %q (allowed: reject, allow-with-warning)", r.Unavailable)
	}
	if r.Refresh < Duration(time.Second) {
		ps.add("client_auth.revocation.refresh", "must be at least 1s")
	}
	if r.MaxCRLSize < 1<<10 || r.MaxCRLSize > MaxMaxCRLSize {
		ps.add("client_auth.revocation.max_crl_size", "%d bytes is out of range (use 1KiB to 256MiB; default 8MiB)", int64(r.MaxCRLSize))
	}
	if a.Refusal != RefusalTLS && a.Refusal != RefusalHTTP {
		ps.add("client_auth.refusal", "unknown value %q (allowed: tls, a handshake alert; http, a 400 JSON answer with the reason code)", a.Refusal)
	}
	if a.MaxChainLength < 1 || a.MaxChainLength > MaxMaxChainLength {
		ps.add("client_auth.max_chain_length", "%d is out of range (use 1 to %d: the leaf, its intermediates and the root; default %d)",
			a.MaxChainLength, MaxMaxChainLength, DefaultMaxChainLength)
	}
}

func (c *Config) validateHSTS(ps *problems) {
	h := &c.HSTS
	if h.MaxAge < Duration(24*time.Hour) {
		ps.add("hsts.max_age", "must be at least 1d; HSTS is always sent and a shorter max-age lets it lapse (default 2y)")
	}
	if h.Preload && (!h.IncludeSubdomains || h.MaxAge < Duration(365*24*time.Hour)) {
		ps.add("hsts.preload", "preload requires include_subdomains: true and max_age of at least 1y (hstspreload.org rules)")
	}
}

var (
	routeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	hostLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	methodTok = regexp.MustCompile(`^[A-Z]{1,20}$`)
)

func (c *Config) validateRoutes(ps *problems) {
	if len(c.Routes) == 0 {
		ps.add("routes", "at least one route is required (name, path, backend)")
	}
	names := map[string]int{}
	keys := map[string]int{}
	for i, r := range c.Routes {
		f := "routes[" + strconv.Itoa(i) + "]"
		switch j, dup := names[r.Name]; {
		case r.Name == "":
			ps.add(f+".name", "required: a short name for logs and metrics")
		case !routeName.MatchString(r.Name):
			ps.add(f+".name", "%q: use letters, digits, '-', '_' and '.' (at most 63)", r.Name)
		case dup:
			ps.add(f+".name", "%q is already the name of routes[%d]", r.Name, j)
		}
		names[r.Name] = i
		if r.Host != "" {
			if err := ValidHost(r.Host); err != nil {
				ps.add(f+".host", "%w", err)
			}
		}
		switch p, err := sanitize.Path(r.Path); {
		case !strings.HasPrefix(r.Path, "/"):
			ps.add(f+".path", "%q must start with \"/\" (use %q)", r.Path, "/"+r.Path)
		case err != nil:
			ps.add(f+".path", "%q: %w", r.Path, err)
		case p != r.Path:
			ps.add(f+".path", "%q is not in normal form (write %q)", r.Path, p)
		}
		key := NormalizeHost(r.Host) + " " + r.Path
		if j, dup := keys[key]; dup {
			ps.add(f+".path", "routes[%d] already has host %q and path %q", j, r.Host, r.Path)
		}
		keys[key] = i
		c.validateBackend(ps, f, &r)
		if !r.Requires() {
			if c.ClientAuth.Mode == ModeRequire {
				ps.add(f+".require_client_cert", "false has no effect while client_auth.mode is require (set mode: optional)")
			}
			if len(r.Allow) > 0 {
				ps.add(f+".allow", "allow rules need a client certificate; remove them or set require_client_cert: true")
			}
		} else if c.ClientAuth.Mode == ModeNone {
			ps.add(f+".require_client_cert", "the route requires a client certificate but client_auth.mode is none (set mode: require or optional, or require_client_cert: false)")
		}
		validateAllow(ps, f+".allow", r.Allow)
		for j, m := range r.Methods {
			if !methodTok.MatchString(m) {
				ps.add(f+".methods["+strconv.Itoa(j)+"]", "%q is not an HTTP method (use upper case, e.g. GET)", m)
			}
		}
		for j, u := range r.Upgrades {
			switch strings.ToLower(u) {
			case "websocket":
			case "h2c":
				ps.add(f+".upgrades["+strconv.Itoa(j)+"]", "h2c is never passed: it would tunnel HTTP/2 past every per-request check (remove it)")
			default:
				ps.add(f+".upgrades["+strconv.Itoa(j)+"]", "%q is not a supported upgrade (use websocket, or [] for none)", u)
			}
		}
		if r.MaxBody < 0 {
			ps.add(f+".max_body", "must not be negative")
		}
	}
}

func (c *Config) validateBackend(ps *problems, f string, r *Route) {
	if r.Backend == "" {
		ps.add(f+".backend", "required: the backend's URL, e.g. http://127.0.0.1:9001")
		return
	}
	u, err := url.Parse(r.Backend)
	switch {
	case err != nil:
		ps.add(f+".backend", "%q is not a URL", r.Backend)
		return
	case u.Scheme != "http" && u.Scheme != "https":
		ps.add(f+".backend", "scheme %q not supported (use http or https)", u.Scheme)
	case u.Host == "":
		ps.add(f+".backend", "%q has no host (use e.g. http://127.0.0.1:9001)", r.Backend)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		ps.add(f+".backend", "%q must not carry credentials, a query or a fragment", r.Backend)
	}
	if t := r.UpstreamTLS; t != nil {
		if u.Scheme != "https" {
			ps.add(f+".upstream_tls", "needs an https backend")
		}
		if (t.Cert == "") != (t.Key == "") {
			ps.add(f+".upstream_tls", "cert and key go together")
		}
		if t.Renew != nil && t.Cert == "" {
			ps.add(f+".upstream_tls.renew", "needs cert and key: the certificate to renew")
		}
		t.Renew.validate(ps, f+".upstream_tls.renew")
	}
}

// ValidHost checks a route host: a DNS name or "*." followed by one.
func ValidHost(h string) error {
	name := strings.TrimPrefix(NormalizeHost(h), "*.")
	if name == "" || len(name) > 253 {
		return fmt.Errorf("%q is not a host name", h)
	}
	for _, l := range strings.Split(name, ".") {
		if !hostLabel.MatchString(l) {
			return fmt.Errorf("%q is not a host name (a wildcard is only allowed as \"*.example.com\")", h)
		}
	}
	return nil
}

// NormalizeHost lower-cases a host name and removes one trailing dot.
func NormalizeHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// OpenSSL names of the TLS 1.2 suites gatehouse serves (tlsconf.Suites12),
// from the one suite name table.
var secureSuites = func() map[string]uint16 {
	m := map[string]uint16{}
	for _, id := range tlsconf.Suites12 {
		n, ok := suitenames.ByID(id)
		if !ok {
			panic(fmt.Sprintf("config: suite %#04x of tlsconf.Suites12 has no OpenSSL name in suitenames", id))
		}
		m[n.OpenSSL] = id
	}
	return m
}()

// CipherSuite resolves a TLS 1.2 suite name, in IANA/Go form
// (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) or OpenSSL form
// (ECDHE-RSA-AES128-GCM-SHA256), refusing anything but ECDHE with an AEAD
// and saying why.
func CipherSuite(name string) (uint16, error) {
	if id, ok := secureSuites[strings.ToUpper(name)]; ok {
		return id, nil
	}
	for _, s := range tls.CipherSuites() {
		if s.Name == name {
			if slices.Contains(tlsconf.Suites12, s.ID) {
				return s.ID, nil
			}
			if slices.Contains(s.SupportedVersions, tls.VersionTLS13) {
				return 0, fmt.Errorf("%q is a TLS 1.3 suite; TLS 1.3 suites are not configurable (all are secure)", name)
			}
		}
	}
	u := strings.ToUpper(name)
	why := ""
	switch {
	case strings.Contains(u, "RC4"):
		why = "RC4 is broken (RFC 7465)"
	case strings.Contains(u, "3DES") || strings.Contains(u, "DES-CBC3") || strings.Contains(u, "DES"):
		why = "3DES/DES are broken (Sweet32)"
	case strings.Contains(u, "NULL") || strings.Contains(u, "EXPORT") || strings.Contains(u, "ANON") || strings.HasPrefix(u, "ADH") || strings.HasPrefix(u, "AECDH"):
		why = "it offers no encryption or no authentication"
	case strings.Contains(u, "CBC") || (strings.Contains(u, "SHA") && !strings.Contains(u, "GCM") && !strings.Contains(u, "CHACHA")):
		why = "CBC mode suites are open to padding-oracle attacks (Lucky13); only AEAD suites are allowed"
	case strings.HasPrefix(u, "TLS_RSA_") || strings.HasPrefix(u, "AES") || strings.HasPrefix(u, "RSA") || strings.HasPrefix(u, "DHE-") || strings.HasPrefix(u, "TLS_DHE_"):
		why = "it lacks ECDHE forward secrecy"
	}
	allowed := slices.Sorted(maps.Keys(secureSuites))
	if why != "" {
		return 0, fmt.Errorf("%q is insecure: %s (use one of %s)", name, why, strings.Join(allowed, ", "))
	}
	return 0, fmt.Errorf("unknown cipher suite %q (allowed: %s)", name, strings.Join(allowed, ", "))
}
