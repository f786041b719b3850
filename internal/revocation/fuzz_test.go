package revocation

import (
	"bytes"
	"crypto/x509"
	"regexp"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

// FuzzCRLHeader checks the header-only decoding that runs before a CRL's
// signature is verified: it never panics, and whenever crypto/x509 parses
// the whole CRL, the header gatehouse decoded (with the entries left out)
// says the same and covers the same signed bytes.
func FuzzCRLHeader(f *testing.F) {
	root := testpki.NewRoot(f, "root")
	now := time.Now()
	f.Add(root.CRL(f, 1, now, now.Add(time.Hour)))
	f.Add(bigCRL(f, root, now, 3))
	f.Add(forgedCRL(f, root, 7, now))
	f.Add([]byte("-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n"))
	f.Add([]byte{0x30, 0x03, 0x30, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		stripped, tbs, err := withoutEntries(der)
		full, ferr := x509.ParseRevocationList(der)
		if ferr != nil {
			return
		}
		if !exactCertificateList(der) {
			// crypto/x509 ignores bytes after the CertificateList and
			// after its signature; gatehouse refuses them (stricter is
			// the safe side).
			if err == nil {
				t.Fatal("withoutEntries accepted trailing data")
			}
			return
		}
		if !tbsExact(der) {
			// crypto/x509 stops reading the TBSCertList after the
			// fields it knows and ignores what follows; gatehouse
			// refuses it.
			if err == nil {
				t.Fatal("withoutEntries accepted a TBSCertList with data after its fields")
			}
			return
		}
		if err != nil {
			t.Fatalf("crypto/x509 parses the CRL, withoutEntries does not: %v", err)
		}
		if !bytes.Equal(tbs, full.RawTBSRevocationList) {
			t.Fatal("signed bytes differ from crypto/x509's")
		}
		h, err := x509.ParseRevocationList(stripped)
		if err != nil {
			t.Fatalf("header without entries does not parse: %v", err)
		}
		if !bytes.Equal(h.RawIssuer, full.RawIssuer) || !bytes.Equal(h.AuthorityKeyId, full.AuthorityKeyId) ||
			!h.ThisUpdate.Equal(full.ThisUpdate) || !h.NextUpdate.Equal(full.NextUpdate) ||
			(h.Number == nil) != (full.Number == nil) || (h.Number != nil && h.Number.Cmp(full.Number) != 0) ||
			len(h.Extensions) != len(full.Extensions) || len(h.RevokedCertificateEntries) != 0 {
			t.Fatalf("header differs: %+v vs %+v", h, full)
		}
	})
}

// exactCertificateList reports whether der is one SEQUENCE of exactly a
// TBSCertList, an AlgorithmIdentifier and a BIT STRING, with nothing after.
func exactCertificateList(der []byte) bool {
	in := cryptobyte.String(der)
	var outer, tbs, alg, sig cryptobyte.String
	return in.ReadASN1(&outer, cbasn1.SEQUENCE) && in.Empty() &&
		outer.ReadASN1Element(&tbs, cbasn1.SEQUENCE) &&
		outer.ReadASN1Element(&alg, cbasn1.SEQUENCE) &&
		outer.ReadASN1Element(&sig, cbasn1.BIT_STRING) && outer.Empty()
}

// tbsExact reports whether the TBSCertList of der (an exact
// CertificateList) is RFC 5280's fields and nothing else: its elements'
// tags, in order, are INTEGER? SEQUENCE SEQUENCE Time Time? SEQUENCE?
// [0]?, each element well formed.
func tbsExact(der []byte) bool {
	in := cryptobyte.String(der)
	var outer, tbs cryptobyte.String
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) || !outer.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return false
	}
	var tags []byte
	for !tbs.Empty() {
		var el cryptobyte.String
		var tag cbasn1.Tag
		if !tbs.ReadAnyASN1Element(&el, &tag) {
			return false
		}
		switch tag {
		case cbasn1.INTEGER:
			tags = append(tags, 'I')
		case cbasn1.SEQUENCE:
			tags = append(tags, 'S')
		case cbasn1.UTCTime, cbasn1.GeneralizedTime:
			tags = append(tags, 'T')
		case cbasn1.Tag(0).Constructed().ContextSpecific():
			tags = append(tags, 'E')
		default:
			tags = append(tags, '?')
		}
	}
	return tbsLayout.Match(tags)
}

var tbsLayout = regexp.MustCompile(`^I?SSTT?S?E?$`)
