package authz

// Rule is one allow rule exactly as written under routes[].allow[] in the
// configuration file. Every field that is set must match (AND); a route
// allows a client when any of its rules matches (OR). The empty string means
// "not set". A Rule with no field set is refused by Compile: it would
// silently allow every verified client, which an empty allow list already
// says explicitly.
//
// Matching uses typed certificate fields only (SANs, subject attributes,
// digests); nothing parses a distinguished-name string, and a certificate
// string that contains a NUL byte never matches.
type Rule struct {
	// SPIFFEID matches the leaf's URI SAN as a SPIFFE ID, for example
	// "spiffe://example.com/billing/*". In the path, "*" as a whole segment
	// matches exactly one segment and "**" as the last segment matches one or
	// more segments; "*" anywhere else is refused. The trust domain is
	// compared case-insensitively, the path byte for byte. The leaf must
	// carry exactly one URI SAN (X.509-SVID), and it must itself be a valid
	// SPIFFE ID: scheme spiffe, no userinfo, port, query or fragment, no
	// empty, "." or ".." segment, no percent-encoding. Empty: not checked.
	SPIFFEID string `yaml:"spiffe_id"`

	// SANURI matches when one of the leaf's URI SANs, in the string form
	// crypto/x509 parsed it to, is byte-identical to SANURI. Compile refuses a
	// value that is not in that canonical form, since it could never match.
	// Empty: not checked.
	SANURI string `yaml:"san_uri"`

	// SANDNS matches one of the leaf's DNS SANs: either exactly, or as
	// "*.example.com" where "*" stands for exactly one left-most label.
	// Comparison folds ASCII case only and ignores one trailing dot on either
	// side. A certificate name containing "*" matches only a pattern that is
	// literally the same. Empty: not checked.
	SANDNS string `yaml:"san_dns"`

	// SANEmail matches one of the leaf's email SANs exactly: the local part
	// byte for byte, the domain case-insensitively (ASCII). Empty: not checked.
	SANEmail string `yaml:"san_email"`

	// SANIP matches one of the leaf's IP SANs, given as a single address
	// ("10.1.2.3", "2001:db8::1") or a CIDR prefix ("10.0.0.0/8"). IPv4-mapped
	// IPv6 addresses are treated as the IPv4 address they map, on both sides.
	// Empty: not checked.
	SANIP string `yaml:"san_ip"`

	// Subject matches attributes of the leaf's subject. The zero value checks
	// nothing.
	Subject Subject `yaml:"subject"`

	// Issuer is the path of a PEM file holding one or more CA certificates.
	// It matches when a certificate above the leaf in the verified chain is
	// byte-identical to one of them. The file is read once, by Compile.
	// Empty: not checked.
	Issuer string `yaml:"issuer"`

	// FingerprintSHA256 pins the leaf certificate: the SHA-256 of its DER
	// encoding as 64 hex digits, in either case, optionally with ":" between
	// every byte (as printed by openssl x509 -fingerprint -sha256).
	// Empty: not checked.
	FingerprintSHA256 string `yaml:"fingerprint_sha256"`

	// SPKISHA256 pins the leaf's key: the SHA-256 of its DER
	// SubjectPublicKeyInfo, as 64 hex digits (optionally with ":") or as
	// standard padded base64 (the HPKP pin-sha256 form). It survives
	// re-issuance with the same key. Empty: not checked.
	SPKISHA256 string `yaml:"spki_sha256"`
}

// Subject matches attributes of the leaf certificate's subject. Each set
// attribute must occur in the subject exactly once and equal the given value
// byte for byte; a subject with the attribute twice (for example two CNs) is
// ambiguous and never matches. The zero value checks nothing.
type Subject struct {
	// CN is the commonName (2.5.4.3). Empty: not checked.
	CN string `yaml:"cn"`
	// O is the organizationName (2.5.4.10). Empty: not checked.
	O string `yaml:"o"`
	// OU is the organizationalUnitName (2.5.4.11). Empty: not checked.
	OU string `yaml:"ou"`
	// C is the two-letter countryName (2.5.4.6), e.g. "US". Empty: not checked.
	C string `yaml:"c"`
}

func (s Subject) isZero() bool { return s == Subject{} }

func (r Rule) isZero() bool { return r == Rule{} }
