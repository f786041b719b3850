package tlsconf

// Code is the reason a client certificate was refused: short, stable, and
// safe to show the client (it says what is wrong, never more).
type Code string

// The reason codes.
const (
	CodeNoCertificate        Code = "no_certificate"
	CodeUntrustedIssuer      Code = "untrusted_issuer"
	CodeExpired              Code = "expired"
	CodeNotYetValid          Code = "not_yet_valid"
	CodeRevoked              Code = "revoked"
	CodeRevocationUnknown    Code = "revocation_unavailable"
	CodeMissingClientAuthEKU Code = "missing_client_auth_eku"
	CodeBadKeyUsage          Code = "bad_key_usage"
	CodeCAAsClient           Code = "ca_certificate"
	CodeChainTooLong         Code = "chain_too_long"
	CodeWeakKey              Code = "weak_key"
	CodeBadSPIFFEID          Code = "bad_spiffe_id"
	CodeInvalid              Code = "invalid_certificate"
)

// hint is the fix an operator can apply, added to the log line.
func (c Code) hint() string {
	switch c {
	case CodeMissingClientAuthEKU:
		return "to fix: issue the certificate with the clientAuth extended key usage: " +
			"`gatehouse ca sign --profile client`, or with openssl add `-extfile client.ext` " +
			"where client.ext holds the line `extendedKeyUsage=clientAuth`; " +
			"to accept certificates without any EKU extension, set client_auth.allow_missing_eku: true"
	case CodeBadKeyUsage:
		return "to fix: issue it with keyUsage digitalSignature (openssl: `keyUsage=digitalSignature` in the -extfile), or `gatehouse ca sign --profile client`"
	case CodeChainTooLong:
		return "to fix: send only the leaf and its intermediates, or raise client_auth.max_chain_length"
	case CodeUntrustedIssuer:
		return "to fix: add the issuing CA's root to client_auth.trusted_cas, and have the client send its intermediates"
	}
	return ""
}
