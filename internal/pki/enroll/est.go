package enroll

import (
	"bytes"
	"encoding/asn1"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/smallstep/pkcs7"

	"github.com/gatehouse/gatehouse/internal/pki"
)

// EST (RFC 7030) lives under estPrefix, without a CA label: one CA per
// server. Requests and answers are base64 DER (section 4 and RFC 8951);
// certificates travel as PKCS#7 certs-only (degenerate SignedData), built
// by smallstep/pkcs7.
const estPrefix = "/.well-known/est/"

// oidECDSAWithSHA256 is the signature algorithm csrattrs asks for.
var oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}

func (s *Server) serveEST(w http.ResponseWriter, r *http.Request, op string) error {
	switch op {
	case "cacerts":
		if r.Method != http.MethodGet {
			return fail(http.StatusMethodNotAllowed, "method not allowed", nil)
		}
		certs := append(s.ca.Chain(), s.ca.Root())
		var der []byte
		for _, c := range certs {
			der = append(der, c.Raw...)
		}
		return writePKCS7(w, der, "application/pkcs7-mime")
	case "csrattrs":
		if r.Method != http.MethodGet {
			return fail(http.StatusMethodNotAllowed, "method not allowed", nil)
		}
		b, err := asn1.Marshal([]asn1.ObjectIdentifier{oidECDSAWithSHA256})
		if err != nil {
			return fail(http.StatusInternalServerError, "internal error", err)
		}
		writeBase64(w, "application/csrattrs", b)
		return nil
	case "simpleenroll", "simplereenroll":
		return s.post(w, r, func(body []byte) error { return s.estEnroll(w, r, op, body) })
	}
	return fail(http.StatusNotFound, "not found", nil)
}

// estEnroll: simpleenroll authenticates with a token (HTTP Basic password
// or Bearer) or with a certificate of this CA (then it renews, as
// simplereenroll does); simplereenroll needs the certificate.
func (s *Server) estEnroll(w http.ResponseWriter, r *http.Request, op string, body []byte) error {
	if ct := mediaType(r.Header.Get("Content-Type")); ct != "application/pkcs10" {
		return failf(http.StatusUnsupportedMediaType, "content type must be application/pkcs10", "content type %q", ct)
	}
	der, err := decodeBase64(body)
	if err != nil {
		return fail(http.StatusBadRequest, "bad CSR: the body must be base64 DER (RFC 7030)", err)
	}
	csr, err := pki.ParseCSR(der)
	if err != nil {
		return fail(http.StatusBadRequest, "bad CSR", err)
	}
	var iss *pki.Issued
	token, hasToken := bearer(r)
	if _, pass, ok := r.BasicAuth(); ok && !hasToken {
		token, hasToken = pass, pass != ""
	}
	switch {
	case op == "simpleenroll" && hasToken:
		iss, err = s.enrollWithToken(r, csr, token, "est-enroll")
	case r.TLS != nil && len(r.TLS.PeerCertificates) > 0:
		iss, err = s.renew(r, csr, "est-"+strings.TrimPrefix(op, "simple"))
	default:
		w.Header().Set("WWW-Authenticate", `Basic realm="gatehouse EST"`)
		return fail(http.StatusUnauthorized, "authenticate with a token (HTTP Basic password or Bearer) or a client certificate of this CA", nil)
	}
	if err != nil {
		return err
	}
	var chain []byte
	for _, c := range iss.Chain {
		chain = append(chain, c.Raw...)
	}
	return writePKCS7(w, chain, "application/pkcs7-mime; smime-type=certs-only")
}

func writePKCS7(w http.ResponseWriter, certsDER []byte, ctype string) error {
	p7, err := pkcs7.DegenerateCertificate(certsDER)
	if err != nil {
		return fail(http.StatusInternalServerError, "internal error", err)
	}
	writeBase64(w, ctype, p7)
	return nil
}

// writeBase64 writes b in base64 with 64-character lines, which `openssl
// base64 -d` reads.
func writeBase64(w http.ResponseWriter, ctype string, b []byte) {
	enc := base64.StdEncoding.EncodeToString(b)
	var out bytes.Buffer
	for len(enc) > 64 {
		out.WriteString(enc[:64])
		out.WriteString("\r\n")
		enc = enc[64:]
	}
	out.WriteString(enc)
	out.WriteString("\r\n")
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Transfer-Encoding", "base64")
	w.Write(out.Bytes())
}

// decodeBase64 decodes base64 that may be broken into lines. A PEM CSR is
// accepted as well, for clients that send one.
func decodeBase64(b []byte) ([]byte, error) {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN")) {
		return b, nil
	}
	clean := bytes.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, b)
	return base64.StdEncoding.DecodeString(string(clean))
}

func mediaType(ct string) string {
	t, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(t))
}
