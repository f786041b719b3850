package identity

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"strings"
)

// XFCC returns the verified client as one Envoy-compatible
// X-Forwarded-Client-Cert element:
//
//	Hash=<hex SHA-256 of leaf DER>;Cert="<URL-encoded PEM leaf>";Subject="<DN>";URI=<uri>;DNS=<name>;DNS=<name>
//
// following Envoy's documented format: keys in that order, Subject always
// double-quoted, one URI= per URI SAN (an empty URI= when there is none, as
// Envoy does), one DNS= per DNS SAN. A value containing ',', ';', '=', '"',
// '\' or a space is double-quoted, with '"' and '\' escaped by '\' (an
// RFC 9110 quoted-string), so a certificate value cannot forge a key or a
// further element. The Subject is the leaf's full subject in RFC 4514 form
// taken from the raw RDN sequence (every attribute, in order, so a repeated
// CN is visible), with control and non-ASCII bytes written as \XX hex pairs
// so the header stays ASCII. A SAN containing a control character cannot be
// carried in an HTTP header and is left out; Cert still carries the whole
// certificate. Cert escapes every byte but A-Z a-z 0-9 "-._~" as %XX, so it
// decodes the same with url.QueryUnescape and url.PathUnescape.
//
// There is exactly one element and no By=: gatehouse removes incoming copies
// and sets the header itself. XFCC returns "" for a nil identity.
func XFCC(id *Identity) string {
	if id == nil || id.Leaf == nil {
		return ""
	}
	var b strings.Builder
	b.Grow(2*len(id.Leaf.Raw) + 256) // the URL-encoded PEM dominates
	b.WriteString("Hash=")
	b.WriteString(id.Fingerprint())
	b.WriteString(`;Cert="`)
	writeURLEncoded(&b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.Leaf.Raw}))
	b.WriteString(`";Subject=`)
	writeQuoted(&b, subjectRFC4514(id.Leaf.RawSubject, id.Leaf.Subject))
	if len(id.Leaf.URIs) == 0 {
		b.WriteString(";URI=")
	}
	for _, u := range id.Leaf.URIs {
		if u == nil {
			continue
		}
		writePair(&b, "URI", u.String())
	}
	for _, name := range id.Leaf.DNSNames {
		writePair(&b, "DNS", name)
	}
	return b.String()
}

// RFC9440 returns the RFC 9440 Client-Cert and Client-Cert-Chain field
// values. clientCert is the leaf's DER as a Structured Field Byte Sequence
// (":base64:"). clientCertChain is an sf-list of Byte Sequences holding the
// rest of the verified chain in TLS order (each certificate followed by its
// issuer), up to and including the trust anchor: RFC 9440 defines the field
// as the chain used to validate the leaf, and its example carries the root
// although the client sent only leaf and intermediate. clientCertChain is ""
// when the leaf is itself the trust anchor. Both are "" for a nil identity.
func RFC9440(id *Identity) (clientCert, clientCertChain string) {
	if id == nil || id.Leaf == nil {
		return "", ""
	}
	clientCert = sfBinary(id.Leaf.Raw)
	if len(id.Chain) < 2 {
		return clientCert, ""
	}
	var b strings.Builder
	for i, c := range id.Chain[1:] {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(sfBinary(c.Raw))
	}
	return clientCert, b.String()
}

// sfBinary encodes an RFC 8941 Byte Sequence: standard base64 with padding,
// between colons.
func sfBinary(der []byte) string {
	return ":" + base64.StdEncoding.EncodeToString(der) + ":"
}

// writePair appends ";key=value", quoting value when needed; a value that
// no header can carry is skipped.
func writePair(b *strings.Builder, key, value string) {
	if !headerSafe(value) {
		return
	}
	b.WriteByte(';')
	b.WriteString(key)
	b.WriteByte('=')
	if needsQuotes(value) {
		writeQuoted(b, value)
	} else {
		b.WriteString(value)
	}
}

// headerSafe reports whether s holds no control character (HTAB included:
// it is legal in a header but would be mangled by trimming).
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

func needsQuotes(s string) bool {
	return s == "" || strings.ContainsAny(s, ",;=\"\\ ")
}

// writeQuoted appends s as an RFC 9110 quoted-string.
func writeQuoted(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

const upperHex = "0123456789ABCDEF"

func writeURLEncoded(b *strings.Builder, data []byte) {
	for _, c := range data {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&0xf])
	}
}

// subjectRFC4514 formats the subject from its raw DER, so that every
// attribute appears (pkix.Name keeps only the last CN), falling back to the
// parsed name if the raw form does not decode. Control and non-ASCII bytes
// become \XX hex pairs, which RFC 4514 section 2.4 allows for any byte.
func subjectRFC4514(raw []byte, parsed pkix.Name) string {
	var rdns pkix.RDNSequence
	s := ""
	if rest, err := asn1.Unmarshal(raw, &rdns); err == nil && len(rest) == 0 {
		s = rdns.String()
	} else {
		s = parsed.String()
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f {
			b.WriteByte('\\')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
