package scan

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"time"
)

// poodleTLS probes the TLS padding flaw (CVE-2014-8730): AES-CBC records
// whose padding bytes are wrong but whose MAC is right. A server that
// checks only the padding length accepts them (and is open to POODLE
// over TLS); a correct one answers bad_record_mac. A control request with
// correct padding must be answered first, so that a failure of the probe
// itself is never taken for safety.
func (p *prober) poodleTLS(ctx context.Context, r *Report, cert *tls.Certificate) Vuln {
	v := Vuln{ID: "poodle_tls", Name: "POODLE (TLS)", CVE: "CVE-2014-8730", Method: "probed"}
	cbcAnywhere, suite := false, uint16(0)
	for _, pr := range r.Protocols {
		if !pr.Offered || pr.Version < VersionTLS10 || pr.Version > VersionTLS12 {
			continue
		}
		for _, s := range pr.Suites {
			cbcAnywhere = cbcAnywhere || s.CBC
			if params, ok := session12Suites[s.ID]; ok && params.cbc && pr.Version == VersionTLS12 && suite == 0 {
				suite = s.ID
			}
		}
	}
	switch {
	case !cbcAnywhere:
		v.Status, v.Detail, v.Method = NotVulnerable, "no CBC suites in TLS", "inferred"
		return v
	case suite == 0:
		v.Status, v.Detail = NotTested, "CBC offered, but not ECDHE AES-CBC-SHA with TLS 1.2, which the probe needs"
		return v
	}
	good, err := p.cbcAnswer(ctx, suite, cert, false)
	if err != nil {
		v.Status, v.Detail = NotTested, err.Error()
		return v
	}
	if good != "data" {
		v.Status, v.Detail = NotTested, "the control request with correct padding got no answer ("+good+"); --http servers only"
		return v
	}
	bad, err := p.cbcAnswer(ctx, suite, cert, true)
	if err != nil {
		v.Status, v.Detail = NotTested, err.Error()
		return v
	}
	if bad == "data" {
		v.Status, v.Detail = Vulnerable, fmt.Sprintf("a record with wrong padding bytes was accepted (%s)", SuiteInfo(suite).OpenSSL)
		return v
	}
	v.Status, v.Detail = NotVulnerable, fmt.Sprintf("wrong padding bytes refused (%s, %s)", bad, SuiteInfo(suite).OpenSSL)
	return v
}

// cbcAnswer sends an HTTP request in one CBC record (with wrong padding
// bytes when bad is set) and returns what came back: "data", "alert",
// "closed" or "timeout".
func (p *prober) cbcAnswer(ctx context.Context, suite uint16, cert *tls.Certificate, bad bool) (string, error) {
	s, err := p.handshake12(ctx, suite, cert)
	if err != nil {
		return "", err
	}
	defer s.Close()
	req := fmt.Sprintf("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", p.sni)
	if _, err := s.c.Write(s.seal(23, []byte(req), bad)); err != nil {
		return "closed", nil
	}
	s.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	typ, _, err := s.c.readRecord()
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout", nil
	case err != nil:
		return "closed", nil
	case typ == 23:
		return "data", nil
	case typ == recordAlert:
		return "alert", nil
	}
	return fmt.Sprintf("record type %d", typ), nil
}
