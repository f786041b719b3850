package metrics

// Decision is what became of a request, the decision label of
// gatehouse_requests_total.
type Decision uint8

// The decisions.
const (
	// Allowed: forwarded to the backend, which answered.
	Allowed Decision = iota
	// Denied: refused by the client certificate requirement, the allow
	// rules or the certificate's state (expired, revoked) at request time.
	Denied
	// Refused: refused by a gate before authorization (path, framing,
	// size, method, no route, 421).
	Refused
	// BackendError: the backend failed or timed out (502, 504).
	BackendError
	// Canceled: the client went away before the response.
	Canceled
	numDecisions
)

var decisionNames = [numDecisions]string{"allowed", "denied", "refused", "backend_error", "canceled"}

func (d Decision) String() string { return decisionNames[d] }

// Gate is the check that refused a request with a 4xx before
// authorization: the gate label of gatehouse_requests_refused_total.
type Gate uint8

// The gates.
const (
	GatePath       Gate = iota // 400: the path does not normalize safely
	GateFraming                // 400: ambiguous or malformed HTTP framing, bad authority
	GateSize                   // 413: body larger than max_body
	GateHeaderSize             // 431: request headers too large
	GateMethod                 // 405: method not allowed on the route
	GateRoute                  // 404: no route for host and path
	GateUpgrade                // 400/403: an Upgrade protocol the route does not name
	GateValidation             // 400: the request does not match the route's OpenAPI document
	numGates
)

var gateNames = [numGates]string{"path", "framing", "size", "header_size", "method", "route", "upgrade", "validation"}

func (g Gate) String() string { return gateNames[g] }

// Misdirected is why a request got 421: the reason label of
// gatehouse_misdirected_requests_total.
type Misdirected uint8

// The 421 reasons.
const (
	MisdirectedSNIHost Misdirected = iota // Host differs from the TLS SNI name
	MisdirectedNoSNI                      // no SNI, and Host selects another virtual host
	numMisdirected
)

var misdirectedNames = [numMisdirected]string{"sni_host_mismatch", "no_sni"}

func (r Misdirected) String() string { return misdirectedNames[r] }

// HandshakeFailure is why a TLS handshake was refused, Envoy-style: the
// reason label of gatehouse_tls_handshake_failures_total.
type HandshakeFailure uint8

// The handshake failure reasons.
const (
	FailNoCertificate     HandshakeFailure = iota // required and none presented
	FailUnknownCA                                 // not issued by a trusted client CA
	FailExpired                                   // expired or not yet valid
	FailRevoked                                   // revoked by CRL or OCSP
	FailMissingClientAuth                         // no clientAuth extended key usage
	FailRevocationUnknown                         // revocation status unavailable and the policy rejects
	FailPolicy                                    // other policy: a CA certificate as client, a bad chain
	numHandshakeFailures
)

var handshakeFailureNames = [numHandshakeFailures]string{
	"no_certificate", "unknown_ca", "expired", "revoked", "missing_client_auth_eku", "revocation_unavailable", "policy",
}

func (r HandshakeFailure) String() string { return handshakeFailureNames[r] }

// DenyReason is why a request was denied: the reason label of
// gatehouse_authz_denials_total.
type DenyReason uint8

// The denial reasons.
const (
	DenyNoCertificate     DenyReason = iota // the route requires a certificate; none was presented
	DenyNoRuleMatched                       // no allow rule matched the identity
	DenyExpired                             // the certificate expired while the connection stayed open
	DenyRevoked                             // revoked since the handshake
	DenyRevocationUnknown                   // revocation status unavailable and the policy rejects
	DenyReverify                            // refused when verified again after a reload
	DenyRateLimited                         // over the route's rate limit
	DenyCertificate                         // client_auth.refusal: http: the handshake's certificate was refused
	DenyInFlight                            // over an in-flight bound (max_in_flight, per identity)
	numDenyReasons
)

var denyNames = [numDenyReasons]string{
	"no_certificate", "no_rule_matched", "expired", "revoked", "revocation_unavailable", "reverify_failed", "rate_limited", "certificate_refused", "in_flight_limit",
}

func (r DenyReason) String() string { return denyNames[r] }

// BackendFailure is the kind label of gatehouse_backend_errors_total.
type BackendFailure uint8

// The backend failure kinds.
const (
	BackendFailed      BackendFailure = iota // connection refused, reset, bad response (502)
	BackendTimeout                           // no response in time (504)
	BackendCircuitOpen                       // not tried: the route's circuit breaker is open (503)
	numBackendFailures
)

var backendNames = [numBackendFailures]string{"error", "timeout", "circuit_open"}

func (k BackendFailure) String() string { return backendNames[k] }

// LabelValues lists the values each enum label can take, for the README
// and the tests.
func LabelValues() map[string][]string {
	return map[string][]string{
		"decision":                 decisionNames[:],
		"gate":                     gateNames[:],
		"misdirected reason":       misdirectedNames[:],
		"handshake failure reason": handshakeFailureNames[:],
		"authz denial reason":      denyNames[:],
		"backend error kind":       backendNames[:],
	}
}
