package scan

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// allGoSuites are every TLS 1.0-1.2 suite crypto/tls implements, so the
// certificate handshake works with old servers too.
func allGoSuites() []uint16 {
	var ids []uint16
	for _, s := range tls.CipherSuites() {
		ids = append(ids, s.ID)
	}
	for _, s := range tls.InsecureCipherSuites() {
		ids = append(ids, s.ID)
	}
	return ids
}

// handshake is the outcome of one crypto/tls handshake.
type handshake struct {
	state   *tls.ConnectionState // as seen in VerifyConnection (nil if never reached)
	final   *tls.ConnectionState // after the handshake completed
	certReq *tls.CertificateRequestInfo
	err     error  // handshake error
	alert   string // the server's alert, if any (from err or the first read)
	http    *http.Response
	httpErr error
	conn    *tls.Conn
	resumed bool
	// afterErr is how the connection ended, without an alert, while
	// waiting for the TLS 1.3 post-handshake alert (nil when the wait
	// timed out quietly: the server kept the connection open).
	afterErr error
	// dialErr is why no connection was made: then h says nothing about
	// what the server would have done with the client.
	dialErr error
}

// tlsConfig is the scanner's client config: no verification by crypto/tls
// (the scanner verifies itself), every version and suite Go has.
func (s *scanner) tlsConfig(cert *tls.Certificate, alpn []string, h *handshake) *tls.Config {
	return &tls.Config{
		ServerName:         s.opts.ServerName,
		InsecureSkipVerify: true,
		MinVersion:         tls.VersionTLS10,
		CipherSuites:       allGoSuites(),
		NextProtos:         alpn,
		Time:               s.now,
		VerifyConnection: func(cs tls.ConnectionState) error {
			h.state = &cs
			return nil
		},
		GetClientCertificate: func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			h.certReq = cri
			if cert != nil {
				return cert, nil
			}
			return &tls.Certificate{}, nil
		},
	}
}

// dialTLS runs one handshake. With request set it then sends an HTTP
// request (Host: host, "" for the server name) and reads the answer;
// otherwise it waits briefly for an alert that TLS 1.3 servers send after
// the handshake when they refuse a client certificate.
func (s *scanner) dialTLS(ctx context.Context, cfg *tls.Config, h *handshake, request bool, host string, keep bool) {
	c, release, err := s.p.dialRaw(ctx)
	if err != nil {
		h.err, h.dialErr = err, err
		return
	}
	tc := tls.Client(c.Conn, cfg)
	defer func() {
		if !keep {
			tc.Close()
			release()
		}
	}()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if err := tc.HandshakeContext(ctx); err != nil {
		h.err = err
		h.alert = alertFrom(err)
		if h.alert == internalErrorAlert {
			s.p.sawInternalError()
		}
		return
	}
	st := tc.ConnectionState()
	h.final, h.resumed, h.conn = &st, st.DidResume, tc
	if request {
		if host == "" {
			host = s.hostHeader()
		}
		// Accept-Encoding asks for compression, so that the answer shows
		// whether the server compresses (BREACH).
		fmt.Fprintf(tc, "GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: gatehouse-scan\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: close\r\n\r\n", host)
		resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil {
			h.httpErr = err
			h.alert = alertFrom(err)
			return
		}
		resp.Body.Close()
		h.http = resp
		return
	}
	tc.SetReadDeadline(time.Now().Add(800 * time.Millisecond))
	var b [1]byte
	if _, err := tc.Read(b[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		h.alert = alertFrom(err)
		if h.alert == "" {
			h.afterErr = err
		}
	}
	tc.SetReadDeadline(time.Time{})
}

func (s *scanner) hostHeader() string {
	host, port, _ := net.SplitHostPort(s.opts.Addr)
	if s.opts.ServerName != "" {
		host = s.opts.ServerName
	}
	if port != "443" {
		host = net.JoinHostPort(host, port)
	}
	return host
}

// internalErrorAlert is alertFrom's name for the internal_error alert.
const internalErrorAlert = "internal error"

// alertFrom extracts the alert name from a crypto/tls error.
func alertFrom(err error) string {
	if err == nil {
		return ""
	}
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return strings.TrimPrefix(ae.Error(), "tls: ")
	}
	msg := err.Error()
	if i := strings.Index(msg, "remote error: tls: "); i >= 0 {
		return msg[i+len("remote error: tls: "):]
	}
	return ""
}

// answer is what one handshake showed about the server's treatment of
// the client it was given.
type answer int

const (
	// accepted: the handshake completed and nothing refused the client.
	accepted answer = iota
	// refused: the server said no: an alert in or right after the
	// handshake, or an HTTP refusal status.
	refused
	// noAnswer: the connection was not made, or the server timed out,
	// reset or closed it without an alert. A server that does that to
	// every client is not shown to refuse unauthorized ones, so this is
	// never counted as a refusal.
	noAnswer
)

// answer reports what the server did with the client in h, and how.
func (h *handshake) answer() (answer, string) {
	switch {
	case h.dialErr != nil:
		return noAnswer, "not tested: could not connect: " + h.dialErr.Error()
	case h.err != nil && h.alert == internalErrorAlert:
		// A server that fails is not one that refuses: a handshake rate
		// limit answers every client so, the right one too.
		return noAnswer, "the server failed the handshake (internal error alert), which shows no refusal"
	case h.err != nil && h.alert != "":
		return refused, "refused in the handshake (" + h.alert + ")"
	case h.err != nil:
		return noAnswer, "no answer in the handshake: " + silence(h.err)
	case h.alert != "":
		return refused, "refused after the handshake (" + h.alert + ")"
	case h.afterErr != nil:
		return noAnswer, "no answer after the handshake: " + silence(h.afterErr)
	case h.http != nil && (h.http.StatusCode == 400 || h.http.StatusCode == 401 || h.http.StatusCode == 403 || h.http.StatusCode == 495 || h.http.StatusCode == 496):
		return refused, fmt.Sprintf("handshake accepted, HTTP request refused (%s)", h.http.Status)
	case h.http != nil:
		return accepted, fmt.Sprintf("accepted (HTTP %s)", h.http.Status)
	case h.httpErr != nil:
		return noAnswer, "no HTTP answer: " + silence(h.httpErr)
	}
	return accepted, "handshake accepted"
}

// silence names how a connection ended without an alert: "timeout",
// "connection reset", "connection closed", or the error itself.
func silence(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return "connection closed"
	}
	return err.Error()
}

// mintSelfSigned returns a self-signed client certificate.
func mintSelfSigned(now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mint self-signed certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "gatehouse-scan self-signed client"},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("mint self-signed certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// mintImpostor returns a client certificate issued by a CA made up here
// that carries the trusted CA's subject (and, when known, its key ID),
// with the impostor CA in the chain: a server that checks names instead
// of signatures lets it in.
func mintImpostor(now time.Time, subject []byte, skid []byte) (*tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mint impostor CA: %w", err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		RawSubject:   subject,
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, IsCA: true,
		SubjectKeyId: skid,
	}
	if len(subject) == 0 {
		ca.RawSubject = nil
		ca.Subject = pkix.Name{CommonName: "gatehouse-scan impostor CA"}
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, caKey.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("mint impostor CA: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("mint impostor CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mint impostor client: %w", err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano() + 1),
		Subject:      pkix.Name{CommonName: "gatehouse-scan impostor client"},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, key.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("mint impostor client: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}, nil
}

// parseHSTS returns the max-age of a Strict-Transport-Security value.
func parseHSTS(v string) int64 {
	for _, part := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "max-age") {
			n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
			if err == nil && n >= 0 {
				return n
			}
		}
	}
	return 0
}
