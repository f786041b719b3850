package config

import (
	"time"

	"github.com/gatehouse/gatehouse/internal/authz"
)

// Config is the whole configuration file. Zero values are replaced by safe
// defaults in ApplyDefaults; Validate refuses insecure or inconsistent ones.
type Config struct {
	// Listen is the gateway's TCP address. Default ":8443".
	Listen string `yaml:"listen"`
	// ServerTLS configures the certificates the gateway serves.
	ServerTLS ServerTLS `yaml:"server_tls"`
	// ClientAuth configures client certificate verification.
	ClientAuth ClientAuth `yaml:"client_auth"`
	// HSTS configures the Strict-Transport-Security header.
	HSTS HSTS `yaml:"hsts"`
	// IdentityHeaders lists the identity header formats set for backends:
	// "xfcc" and/or "rfc9440". Default none. Incoming copies are always removed.
	IdentityHeaders []string `yaml:"identity_headers"`
	// Routes map host and path prefixes to backends. At least one is required.
	Routes []Route `yaml:"routes"`
	// RateLimit is the rate limit of every route without one of its own.
	// If nil, such routes have none.
	RateLimit *RateLimit `yaml:"rate_limit"`
	// RateLimitStore shares rate limits between gateways in Redis. If
	// nil, each gateway keeps them in memory.
	RateLimitStore *RateLimitStore `yaml:"rate_limit_store"`
	// Timeouts bound how long clients and backends may take.
	Timeouts Timeouts `yaml:"timeouts"`
	// Limits bound the size of what clients send.
	Limits Limits `yaml:"limits"`
	// Admin configures the admin listener.
	Admin Admin `yaml:"admin"`
	// Log configures logging.
	Log Log `yaml:"log"`
	// ExpiryAlerts sends a webhook when a certificate enters a warning window.
	ExpiryAlerts ExpiryAlerts `yaml:"expiry_alerts"`
}

// ServerTLS configures the gateway's own TLS.
type ServerTLS struct {
	// Certificates are chosen by SNI; the first is the default. Required.
	Certificates []CertKey `yaml:"certificates"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version"`
	// CipherSuites restricts the TLS 1.2 suites (TLS 1.3 suites are not
	// configurable). Empty means all of gatehouse's ECDHE+AEAD suites.
	CipherSuites []string `yaml:"cipher_suites"`
	// OCSPStapling staples OCSP responses for the served certificates
	// that name an OCSP responder. Default false.
	OCSPStapling bool `yaml:"ocsp_stapling"`
}

// CertKey is a certificate chain and its private key.
type CertKey struct {
	// Cert is a PEM file: the leaf followed by its intermediates.
	Cert string `yaml:"cert"`
	// Key is a PEM private key: PKCS#1, SEC1, PKCS#8 or encrypted PKCS#8.
	Key string `yaml:"key"`
	// KeyPassphraseFile holds the passphrase of an encrypted key. Empty
	// means the key is not encrypted.
	KeyPassphraseFile string `yaml:"key_passphrase_file"`
	// Renew, if set, renews the certificate from a gatehouse CA's
	// enrollment API before it expires; the new files are hot-swapped.
	// If nil, the files are only watched.
	Renew *Renew `yaml:"renew"`
}

// Client authentication modes.
const (
	ModeRequire  = "require"
	ModeOptional = "optional"
	ModeNone     = "none"
)

// ClientAuth configures how client certificates are requested and verified.
type ClientAuth struct {
	// Mode is require (default), optional or none.
	Mode string `yaml:"mode"`
	// TrustedCAs are PEM files of the CAs client certificates must chain to.
	// Required unless Mode is none. The system roots are never used.
	TrustedCAs []string `yaml:"trusted_cas"`
	// Revocation configures CRL and OCSP checking.
	Revocation Revocation `yaml:"revocation"`
	// MaxChainLength bounds the certificates a client may present (leaf,
	// intermediates, and the root if sent), checked before any signature.
	// Default 4; at most 10.
	MaxChainLength int `yaml:"max_chain_length"`
	// AllowMissingEKU accepts client certificates that carry no extended
	// key usage extension at all (what `openssl x509 -req` without
	// -extfile makes). Default false; a warning is logged at startup.
	AllowMissingEKU bool `yaml:"allow_missing_eku"`
	// Refusal is how a client certificate that is presented but not
	// accepted (untrusted issuer, expired, revoked, missing clientAuth
	// EKU, ...) is refused: "tls" ends the handshake with an alert, "http"
	// completes the handshake and answers every request on the connection
	// 400 with a JSON reason code, before routing and never reaching a
	// backend (as nginx's "400 The SSL certificate error"). Default "http"
	// with mode optional, "tls" with mode require.
	Refusal string `yaml:"refusal"`
}

// Client certificate refusal styles.
const (
	RefusalTLS  = "tls"
	RefusalHTTP = "http"
)

// Revocation configures client certificate revocation checking.
type Revocation struct {
	// CRL lists CRL files and http(s) URLs. Each CRL applies to the
	// certificates of the CA that signed it. Empty: no CRL checking.
	CRL []string `yaml:"crl"`
	// Refresh is how often CRLs are fetched again. Default 1m. CRL files
	// are also re-read when they change.
	Refresh Duration `yaml:"refresh"`
	// OCSP is off (default), prefer (OCSP when it answers, else CRL) or
	// require (OCSP must answer).
	OCSP string `yaml:"ocsp"`
	// OCSPURL overrides the responder named in client certificates.
	OCSPURL string `yaml:"ocsp_url"`
	// Unavailable decides when revocation status cannot be established
	// (CRL past its nextUpdate, OCSP required and not answering): reject
	// (default) or allow-with-warning (each such request is logged).
	Unavailable string `yaml:"unavailable"`
	// MaxCRLSize bounds one CRL's bytes; a larger one is refused before it
	// is parsed. Default 8MiB; at most 256MiB.
	MaxCRLSize Size `yaml:"max_crl_size"`
}

// HSTS configures Strict-Transport-Security.
type HSTS struct {
	// MaxAge defaults to 2y. It must be at least 1d (a shorter one would
	// let the policy lapse between visits); 0 is refused, HSTS is always on.
	MaxAge Duration `yaml:"max_age"`
	// IncludeSubdomains adds includeSubDomains. Default false.
	IncludeSubdomains bool `yaml:"include_subdomains"`
	// Preload adds preload (requires include_subdomains and max_age >= 1y).
	Preload bool `yaml:"preload"`
}

// Route maps requests to a backend.
type Route struct {
	// Name identifies the route in logs and metrics. Required, unique.
	Name string `yaml:"name"`
	// Host is an exact host name or "*.example.com". Empty matches any host.
	Host string `yaml:"host"`
	// Path is a path prefix: "/orders/" matches everything below it and
	// "/orders" itself (so the bare name cannot fall through to a broader
	// route), "/healthz" matches itself and anything below "/healthz/".
	// Default "/".
	Path string `yaml:"path"`
	// Backend is an http:// or https:// URL. Required.
	Backend string `yaml:"backend"`
	// RequireClientCert defaults to true; false needs client_auth.mode
	// optional or none.
	RequireClientCert *bool `yaml:"require_client_cert"`
	// Allow lists the rules of which one must match; empty allows any
	// verified client.
	Allow []authz.Rule `yaml:"allow"`
	// Methods restricts HTTP methods. Empty allows all.
	Methods []string `yaml:"methods"`
	// MaxBody bounds the request body. Default limits.max_body.
	MaxBody Size `yaml:"max_body"`
	// RateLimit limits the route's request rate. If nil, the top-level
	// rate_limit applies (if any); per: none turns it off.
	RateLimit *RateLimit `yaml:"rate_limit"`
	// Upgrades are the Upgrade protocols passed to the backend: only
	// "websocket" is supported. Absent means [websocket]; [] passes none.
	// h2c is never passed.
	Upgrades []string `yaml:"upgrades"`
	// OpenAPI validates requests against an OpenAPI 3 document. If nil,
	// requests are not validated.
	OpenAPI *OpenAPI `yaml:"openapi"`
	// MaxInFlight bounds the route's requests in flight (503 beyond). 0:
	// no bound for the route (limits.in_flight_per_identity still holds).
	MaxInFlight int `yaml:"max_in_flight"`
	// BackendPool bounds connections to the backend. If nil, the
	// upstream client's defaults.
	BackendPool *BackendPool `yaml:"backend_pool"`
	// CircuitBreaker answers 503 at once while the backend keeps failing.
	// If nil, there is none.
	CircuitBreaker *CircuitBreaker `yaml:"circuit_breaker"`
	// UpstreamTLS configures TLS to an https backend.
	UpstreamTLS *UpstreamTLS `yaml:"upstream_tls"`
}

// UpstreamTLS configures how gatehouse connects to an https backend.
type UpstreamTLS struct {
	// CA is a PEM file of CAs for the backend's certificate. Empty means
	// the system roots.
	CA string `yaml:"ca"`
	// Cert and Key are the gateway's client certificate for the backend.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// ServerName overrides the name verified in the backend certificate.
	ServerName string `yaml:"server_name"`
	// Renew, if set, renews Cert and Key from a gatehouse CA's enrollment
	// API, as server_tls.certificates[].renew does. If nil, no renewal.
	Renew *Renew `yaml:"renew"`
}

// Timeouts bound client and backend activity.
type Timeouts struct {
	// Handshake bounds the TLS handshake. Default 10s.
	Handshake Duration `yaml:"handshake"`
	// ReadHeader bounds reading the request headers. Default 10s.
	ReadHeader Duration `yaml:"read_header"`
	// Idle bounds a keep-alive connection's wait for the next request. Default 2m.
	Idle Duration `yaml:"idle"`
	// BackendConnect bounds dialing a backend. Default 5s.
	BackendConnect Duration `yaml:"backend_connect"`
	// BackendResponse bounds the wait for the backend's response headers,
	// and for a small framed body (up to 64 KiB) with them (504 after
	// it); a larger or unframed body streams. Default 60s.
	BackendResponse Duration `yaml:"backend_response"`
	// BackendIdle bounds each read of a streamed backend response body
	// (over 64 KiB or unframed: downloads, chunked, SSE): a backend that
	// sends nothing for this long mid-stream is cut off, and the client's
	// response is cut short (never ended as if whole). A quiet SSE stream
	// needs heartbeats more often than this. Default 5m.
	BackendIdle Duration `yaml:"backend_idle"`
	// Shutdown bounds draining in-flight requests on SIGINT/SIGTERM. Default 30s.
	Shutdown Duration `yaml:"shutdown"`
	// BodyIdle bounds the wait for each read of a request body (per
	// stream in HTTP/2); 408 after it. Default 10s.
	BodyIdle Duration `yaml:"body_idle"`
}

// Limits bound what a client may send.
type Limits struct {
	// MaxHeaderBytes bounds the request line and headers. Default 64KiB.
	MaxHeaderBytes Size `yaml:"max_header_bytes"`
	// MaxBody bounds request bodies unless a route says otherwise. Default 10MiB.
	MaxBody Size `yaml:"max_body"`
	// MinBodyRate is the slowest a request body may arrive, in bytes per
	// second, averaged once timeouts.body_idle has passed; 408 below it.
	// Default 1KiB (per second).
	MinBodyRate Size `yaml:"min_body_rate"`
	// MaxStreams bounds concurrent HTTP/2 streams per connection. Default 100.
	MaxStreams int `yaml:"max_streams"`
	// BackendConnsPerClient bounds the backend requests one client
	// connection has in flight at once (HTTP/2 multiplexes). Default 16.
	BackendConnsPerClient int `yaml:"backend_conns_per_client"`
	// MaxURLLength bounds the request target (414 beyond). Default 8KiB.
	MaxURLLength Size `yaml:"max_url_length"`
	// MaxHeaders bounds the number of request header fields (431 beyond).
	// Default 100.
	MaxHeaders int `yaml:"max_headers"`
	// MaxQueryParams bounds the number of query parameters (400 beyond).
	// Default 256.
	MaxQueryParams int `yaml:"max_query_params"`
	// MaxJSONDepth bounds JSON nesting on routes with openapi. Default 32.
	MaxJSONDepth int `yaml:"max_json_depth"`
	// ConnectionsPerIP bounds open connections per client IP (IPv6: per
	// /64). Default 4096. Behind a TCP load balancer that hides client
	// addresses, every client shares the balancer's IP: raise it.
	ConnectionsPerIP int `yaml:"connections_per_ip"`
	// ConnectionsPerIdentity bounds open connections per client
	// certificate identity. Default 4096.
	ConnectionsPerIdentity int `yaml:"connections_per_identity"`
	// InFlightPerIdentity bounds requests in flight per client
	// certificate identity (503 beyond). Default 1024.
	InFlightPerIdentity int `yaml:"in_flight_per_identity"`
	// HandshakesPerIP bounds every TLS handshake per client IP. If nil,
	// no bound (failed handshakes are still bounded).
	HandshakesPerIP *HandshakeLimit `yaml:"handshakes_per_ip"`
	// FailedHandshakesPerIP bounds TLS handshakes per client IP that fail
	// after the server's key exchange (refused certificates): over it,
	// the IP's next handshakes are refused at the ClientHello until the
	// budget refills. Default 10/s, burst 50.
	FailedHandshakesPerIP *HandshakeLimit `yaml:"failed_handshakes_per_ip"`
}

// Admin configures the admin listener.
type Admin struct {
	// Listen is the admin address (/metrics, /status, /healthz, /readyz).
	// Empty (the default) disables it. A non-loopback address is refused
	// unless AllowNonLoopback is set (DESIGN.md invariant 9).
	Listen string `yaml:"listen"`
	// AllowNonLoopback permits a non-loopback Listen address, e.g. for
	// Kubernetes probes. Default false.
	AllowNonLoopback bool `yaml:"allow_non_loopback"`
	// ClientCA, if set, is a PEM file of CAs: the admin listener then
	// speaks TLS with the gateway's first certificate and requires a
	// client certificate issued by one of them. Empty: plain HTTP.
	ClientCA string `yaml:"client_ca"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format of the operational log: text (default, logfmt) or json.
	Format string `yaml:"format"`
	// Audit is where JSON audit records go: stdout (default), stderr, off
	// or a file path.
	Audit string `yaml:"audit"`
}

// Duration is a time.Duration written as "30s", "90d" or "2y".
type Duration time.Duration

// Size is a byte count written as "65536", "64KiB" or "1MiB".
type Size int64
