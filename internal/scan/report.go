package scan

import "time"

// SchemaVersion is the version of the JSON report (docs/scan.md). It
// changes only when a field is removed or changes meaning.
const SchemaVersion = 1

// Report is everything a scan found. Its JSON form is the stable schema
// documented in docs/scan.md.
type Report struct {
	Schema     int       `json:"schema"`
	Target     string    `json:"target"`      // HOST:PORT as given
	ServerName string    `json:"server_name"` // SNI sent ("" for none)
	Started    time.Time `json:"started"`
	DurationMS int64     `json:"duration_ms"`

	Protocols []Protocol `json:"protocols"`
	// Groups are the key exchange groups, in the server's order when it
	// has one (TLS 1.3), else in the order offered.
	Groups []string `json:"groups"`
	// SignatureAlgorithms are the TLS 1.2 key exchange signature schemes
	// the server uses, in its order.
	SignatureAlgorithms []string `json:"signature_algorithms"`
	// SignatureAlgorithms13 are the schemes the server signs a TLS 1.3
	// CertificateVerify with, found by offering them a few at a time; in
	// the scanner's order (the server's cannot be seen without decrypting).
	SignatureAlgorithms13 []string `json:"signature_algorithms_tls13"`
	// DHBits is the size of the server's DHE prime (0 when no DHE suite).
	DHBits int `json:"dh_bits"`
	// DHCommonPrime names the published group (RFC 2409, 3526 or 7919)
	// whose prime the server uses, "" for none (or no DHE).
	DHCommonPrime string `json:"dh_common_prime,omitempty"`

	Certificates Certificates `json:"certificates"`
	Behaviour    Behaviour    `json:"behaviour"`
	MTLS         []Check      `json:"mtls"`
	HTTP         *HTTPResult  `json:"http,omitempty"` // nil without --http
	Vulns        []Vuln       `json:"vulnerabilities"`
	Grade        Grade        `json:"grade"`
	// Errors are probes that could not run (the rest of the report stands).
	Errors []string `json:"errors"`
}

// Protocol is one protocol version and the suites accepted with it.
type Protocol struct {
	Name    string `json:"name"` // "SSLv2", "SSLv3", "TLS 1.0" ... "TLS 1.3"
	Version uint16 `json:"version"`
	Offered bool   `json:"offered"`
	// ServerOrder is true when the server chooses by its own preference;
	// Suites are then in that order.
	ServerOrder bool    `json:"server_order"`
	Suites      []Suite `json:"suites"`
}

// Certificates describes the chain as served and what was checked.
type Certificates struct {
	Chain []CertInfo `json:"chain"` // as served, leaf first
	// Trusted: the chain verifies to the system roots or --ca.
	Trusted      bool     `json:"trusted"`
	TrustError   string   `json:"trust_error,omitempty"`
	NameMatch    bool     `json:"name_match"`
	InOrder      bool     `json:"in_order"`
	RootSent     bool     `json:"root_sent"`
	Incomplete   bool     `json:"incomplete"` // an intermediate is missing
	Expired      bool     `json:"expired"`
	NotYetValid  bool     `json:"not_yet_valid"`
	DaysLeft     int      `json:"days_left"`
	VerifiedPath []string `json:"verified_path,omitempty"` // subjects, leaf to root
	OCSPStapled  bool     `json:"ocsp_stapled"`
	OCSPStaple   string   `json:"ocsp_staple_status,omitempty"` // good | revoked | unknown | invalid: ... | stale
	// Revocation is what the CRL and OCSP URLs in the leaf said ("" when
	// not fetched).
	CRL  string `json:"crl,omitempty"`
	OCSP string `json:"ocsp,omitempty"`
	// Fetched lists the URLs fetched (AIA issuers, CRLs, OCSP).
	Fetched []string `json:"fetched,omitempty"`
}

// CertInfo is one served certificate.
type CertInfo struct {
	Subject     string    `json:"subject"`
	Issuer      string    `json:"issuer"`
	Serial      string    `json:"serial"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	KeyType     string    `json:"key_type"` // RSA, ECDSA, Ed25519
	KeyBits     int       `json:"key_bits"`
	SigAlg      string    `json:"signature_algorithm"`
	WeakSig     bool      `json:"weak_signature"` // SHA-1 or MD5
	SAN         []string  `json:"san"`
	EKU         []string  `json:"eku"`
	IsCA        bool      `json:"is_ca"`
	SelfSigned  bool      `json:"self_signed"`
	OCSPServers []string  `json:"ocsp_servers,omitempty"`
	CRLPoints   []string  `json:"crl_distribution_points,omitempty"`
	SHA256      string    `json:"sha256"`
}

// Behaviour is how the server handles the protocol's optional parts.
type Behaviour struct {
	SecureRenegotiation bool `json:"secure_renegotiation"`
	// ClientRenegotiation is "refused", "accepted" or "not tested".
	ClientRenegotiation string `json:"client_renegotiation"`
	Compression         bool   `json:"compression"`
	SessionTickets      bool   `json:"session_tickets"`
	SessionIDs          bool   `json:"session_ids"` // the server hands out session IDs
	// SessionIDResumption: a session ID was accepted again (TLS 1.2).
	SessionIDResumption bool `json:"session_id_resumption"`
	// Resumption: a ticket (TLS 1.2 or 1.3) or a session ID was accepted again.
	Resumption bool     `json:"resumption"`
	ALPN       []string `json:"alpn"`
	// FallbackSCSV is "supported", "not supported" or "n/a" (one protocol).
	FallbackSCSV string `json:"fallback_scsv"`
	OCSPStapling bool   `json:"ocsp_stapling"`
	Heartbeat    bool   `json:"heartbeat"`
	// InternalErrors counts the internal_error alerts the server sent
	// during the scan (it failed rather than refused; a handshake rate
	// limit answers so): what it did not offer then may be offered.
	InternalErrors int `json:"internal_errors"`
}

// Check is one pass/fail check with why.
type Check struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
}

// Status is a check's verdict.
type Status string

// Check verdicts.
const (
	Pass       Status = "pass"
	Fail       Status = "fail"
	Warn       Status = "warn"
	Info       Status = "info"
	NotApplied Status = "n/a"
	// Inconclusive: the check could not tell. The connection was not
	// made, or the server timed out, reset or closed it without an
	// alert, which shows no refusal of the client. Never a pass.
	Inconclusive Status = "inconclusive"
)

// HTTPResult is what an HTTP request after the handshake showed.
type HTTPResult struct {
	Status     int    `json:"status"`
	HSTS       string `json:"hsts,omitempty"` // the header as sent
	HSTSMaxAge int64  `json:"hsts_max_age"`   // seconds; 0 when absent
	// MisdirectedStatus is the answer to a request whose Host names
	// another virtual host than the SNI (0 when not tested).
	MisdirectedStatus int    `json:"misdirected_status"`
	MisdirectedHost   string `json:"misdirected_host,omitempty"`
	// ContentEncoding is the compression the server used when the
	// request accepted gzip, deflate and br ("" for none).
	ContentEncoding string `json:"content_encoding,omitempty"`
}

// Vuln is one known vulnerability's verdict.
type Vuln struct {
	ID     string     `json:"id"` // heartbleed, ccs_injection, robot, ...
	Name   string     `json:"name"`
	CVE    string     `json:"cve,omitempty"`
	Status VulnStatus `json:"status"`
	// Method is "probed" (a probe asked the server) or "inferred" (from
	// the offered protocols and suites).
	Method string `json:"method"`
	Detail string `json:"detail"`
}

// VulnStatus is a vulnerability verdict.
type VulnStatus string

// Vulnerability verdicts.
const (
	NotVulnerable VulnStatus = "not vulnerable"
	Vulnerable    VulnStatus = "vulnerable"
	// Exposed: the preconditions are there (e.g. CBC with TLS 1.0 for
	// BEAST) but clients mitigate it or it cannot be confirmed safely.
	Exposed   VulnStatus = "exposed"
	NotTested VulnStatus = "not tested"
)

// Grade is the rating with how it was reached.
type Grade struct {
	Grade              string   `json:"grade"` // A+ A A- B C D E F, or T / M
	GradeIgnoringTrust string   `json:"grade_ignoring_trust,omitempty"`
	Score              int      `json:"score"`
	ProtocolScore      int      `json:"protocol_score"`
	KeyExchangeScore   int      `json:"key_exchange_score"`
	CipherScore        int      `json:"cipher_score"`
	Caps               []Cap    `json:"caps"`
	Warnings           []string `json:"warnings"`
}

// Cap is one rule that limited the grade.
type Cap struct {
	Grade  string `json:"grade"`
	Reason string `json:"reason"`
}
