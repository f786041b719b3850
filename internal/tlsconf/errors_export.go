package tlsconf

// Errors a VerifyError wraps, for callers that classify refusals (metrics
// count handshake failures by reason); test with errors.Is.
var (
	// ErrMissingClientAuth: the leaf lacks the clientAuth extended key usage.
	ErrMissingClientAuth = errNoClientAuth
	// ErrCAAsClient: the leaf is a CA certificate.
	ErrCAAsClient = errCAAsClient
)
