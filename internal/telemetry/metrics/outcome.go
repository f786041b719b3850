package metrics

import "time"

// Outcome is what became of one request, in one value: the engine-neutral
// input of Observe. The request pipeline sets it where it decides (each
// refusal names its outcome), so metrics never parse a reason string.
type Outcome uint8

// The outcomes. Each maps to a decision label and, except OK and
// InternalError, to one secondary counter (a gate, a 421 reason, a denial
// reason or a backend failure kind).
const (
	// ByStatus, the zero value, leaves the outcome to the status code
	// (OutcomeForStatus): what an untagged refusal gets.
	ByStatus Outcome = iota
	OK               // forwarded; the backend answered (any status)

	RefusedPath       // 400: the path does not normalize safely
	RefusedFraming    // 400: bad request target, authority or framing
	RefusedSize       // 413: body larger than max_body
	RefusedHeaderSize // 431: headers too large
	RefusedMethod     // 405: method not allowed on the route
	RefusedNoRoute    // 404: no route for host and path
	RefusedUpgrade    // an Upgrade protocol the route does not name
	RefusedValidation // 400: OpenAPI validation

	MisdirectedSNIHostOutcome // 421: Host differs from the TLS SNI
	MisdirectedNoSNIOutcome   // 421: no SNI and Host selects another virtual host

	DeniedNoCertificate     // 403: the route requires a certificate
	DeniedNoRule            // 403: no allow rule matched
	DeniedExpired           // 403: expired during the connection
	DeniedRevoked           // 403: revoked since the handshake
	DeniedRevocationUnknown // 403: revocation status unavailable, policy reject
	DeniedReverify          // 403: refused when verified again after a reload
	DeniedRateLimited       // 429: over a rate limit
	DeniedCertificate       // 400: the certificate was refused at the handshake (client_auth.refusal: http)
	DeniedInFlight          // 503: an in-flight bound

	FailedBackend     // 502/503: the backend failed
	FailedTimeout     // 504: the backend timed out
	FailedCircuitOpen // 503: the circuit breaker did not let the backend be tried
	ClientCanceled    // 499: the client went away
	InternalError     // 500
	numOutcomes
)

type outcomeInfo struct {
	decision Decision
	gate     int8 // Gate, or -1
	mis      int8 // Misdirected, or -1
	deny     int8 // DenyReason, or -1
	backend  int8 // BackendFailure, or -1
}

var outcomes = [numOutcomes]outcomeInfo{
	ByStatus:                  {BackendError, -1, -1, -1, -1}, // never used: resolved first
	OK:                        {Allowed, -1, -1, -1, -1},
	RefusedPath:               {Refused, int8(GatePath), -1, -1, -1},
	RefusedFraming:            {Refused, int8(GateFraming), -1, -1, -1},
	RefusedSize:               {Refused, int8(GateSize), -1, -1, -1},
	RefusedHeaderSize:         {Refused, int8(GateHeaderSize), -1, -1, -1},
	RefusedMethod:             {Refused, int8(GateMethod), -1, -1, -1},
	RefusedNoRoute:            {Refused, int8(GateRoute), -1, -1, -1},
	RefusedUpgrade:            {Refused, int8(GateUpgrade), -1, -1, -1},
	RefusedValidation:         {Refused, int8(GateValidation), -1, -1, -1},
	MisdirectedSNIHostOutcome: {Refused, -1, int8(MisdirectedSNIHost), -1, -1},
	MisdirectedNoSNIOutcome:   {Refused, -1, int8(MisdirectedNoSNI), -1, -1},
	DeniedNoCertificate:       {Denied, -1, -1, int8(DenyNoCertificate), -1},
	DeniedNoRule:              {Denied, -1, -1, int8(DenyNoRuleMatched), -1},
	DeniedExpired:             {Denied, -1, -1, int8(DenyExpired), -1},
	DeniedRevoked:             {Denied, -1, -1, int8(DenyRevoked), -1},
	DeniedRevocationUnknown:   {Denied, -1, -1, int8(DenyRevocationUnknown), -1},
	DeniedReverify:            {Denied, -1, -1, int8(DenyReverify), -1},
	DeniedRateLimited:         {Denied, -1, -1, int8(DenyRateLimited), -1},
	DeniedCertificate:         {Denied, -1, -1, int8(DenyCertificate), -1},
	DeniedInFlight:            {Denied, -1, -1, int8(DenyInFlight), -1},
	FailedBackend:             {BackendError, -1, -1, -1, int8(BackendFailed)},
	FailedTimeout:             {BackendError, -1, -1, -1, int8(BackendTimeout)},
	FailedCircuitOpen:         {BackendError, -1, -1, -1, int8(BackendCircuitOpen)},
	ClientCanceled:            {Canceled, -1, -1, -1, -1},
	InternalError:             {BackendError, -1, -1, -1, -1},
}

// Observe counts one finished request: r is its route (nil when none
// matched: counted under NoRoute), status the status code sent, o what
// became of it, took its duration, in and out the body bytes received and
// sent. It is the one call the request path makes per request (with
// Begin/End around it for the in-flight gauge); it costs a few atomic adds
// and allocates nothing once a (decision, code) pair has been seen.
func (m *Metrics) Observe(r *Route, status int, o Outcome, took time.Duration, in, out int64) {
	if r == nil {
		r = m.noRoute
	}
	if o == ByStatus {
		o = OutcomeForStatus(status)
	}
	if o >= numOutcomes {
		o = InternalError
	}
	info := &outcomes[o]
	r.Done(status, info.decision, took, in, out)
	switch {
	case info.gate >= 0:
		m.refused[info.gate].Inc()
	case info.mis >= 0:
		m.misdirected[info.mis].Inc()
	case info.deny >= 0:
		r.denials[info.deny].Inc()
	case info.backend >= 0:
		r.backend[info.backend].Inc()
	}
}

// OutcomeForStatus is the outcome of a refusal that names none, from the
// status gatehouse answered with: what each status means when gatehouse
// (not the backend) sends it. A status below 400 is OK.
func OutcomeForStatus(status int) Outcome {
	switch {
	case status == 0:
		return ClientCanceled // nothing was sent
	case status < 400:
		return OK
	}
	switch status {
	case 403:
		return DeniedNoRule
	case 404:
		return RefusedNoRoute
	case 405:
		return RefusedMethod
	case 413:
		return RefusedSize
	case 421:
		return MisdirectedSNIHostOutcome
	case 429:
		return DeniedRateLimited
	case 431:
		return RefusedHeaderSize
	case 499:
		return ClientCanceled
	case 502, 503:
		return FailedBackend
	case 504:
		return FailedTimeout
	}
	if status < 500 {
		return RefusedFraming // 400, 408, 414, 417, ...: the request as sent
	}
	return InternalError
}
