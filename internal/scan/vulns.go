package scan

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"time"
)

// bestLegacy returns the highest TLS 1.0-1.2 (or SSLv3) version offered
// and its suites.
func (r *Report) bestLegacy() (uint16, []uint16) {
	for i := len(r.Protocols) - 1; i >= 0; i-- {
		p := r.Protocols[i]
		if p.Offered && p.Version >= VersionSSL3 && p.Version <= VersionTLS12 && len(p.Suites) > 0 {
			ids := make([]uint16, len(p.Suites))
			for j, s := range p.Suites {
				ids[j] = s.ID
			}
			return p.Version, ids
		}
	}
	return 0, nil
}

// behaviourProbes fills the renegotiation, compression, heartbeat and
// fallback fields and the probed vulnerabilities.
func (p *prober) behaviourProbes(ctx context.Context, r *Report, cert *tls.Certificate) []Vuln {
	var vulns []Vuln
	v, suites := r.bestLegacy()
	if v == 0 {
		r.Behaviour.ClientRenegotiation = "n/a"
		na := "only TLS 1.3 is offered"
		vulns = append(vulns,
			Vuln{ID: "heartbleed", Name: "Heartbleed", CVE: "CVE-2014-0160", Status: NotVulnerable, Method: "inferred", Detail: na},
			Vuln{ID: "ccs_injection", Name: "CCS injection", CVE: "CVE-2014-0224", Status: NotVulnerable, Method: "inferred", Detail: na},
			Vuln{ID: "crime", Name: "CRIME (TLS compression)", CVE: "CVE-2012-4929", Status: NotVulnerable, Method: "inferred", Detail: na + " (TLS 1.3 has no compression)"},
		)
		r.Behaviour.SecureRenegotiation = true // TLS 1.3 has no renegotiation
	} else {
		// Secure renegotiation: the server answers the empty
		// renegotiation_info extension with its own.
		if res, err := p.hello(ctx, p.baseHello(v, suites), false, false); err == nil && res.accepted() {
			_, r.Behaviour.SecureRenegotiation = res.hello.extensions[extRenegotiationInfo]
		} else if err != nil {
			r.Errors = append(r.Errors, err.Error())
		}
		// Compression: offer DEFLATE first. Each probe counts its own
		// internal_error answers: others run beside this one.
		crime := Vuln{ID: "crime", Name: "CRIME (TLS compression)", CVE: "CVE-2012-4929", Method: "probed", Status: NotVulnerable, Detail: "compression refused"}
		ch := p.baseHello(v, suites)
		ch.compression = []byte{1, 0}
		q, n := p.watched()
		if res, err := q.hello(ctx, ch, false, false); err == nil && res.accepted() && res.hello.compression != 0 {
			r.Behaviour.Compression = true
			crime.Status, crime.Detail = Vulnerable, "the server chose DEFLATE compression"
		} else if err != nil {
			crime.Status, crime.Detail = NotTested, err.Error()
		}
		vulns = append(vulns, judged(crime, n.Load()))
		q, n = p.watched()
		vulns = append(vulns, judged(q.heartbleed(ctx, r, v, suites), n.Load()))
		q, n = p.watched()
		vulns = append(vulns, judged(q.ccsInjection(ctx, v, suites), n.Load()))
		r.Behaviour.ClientRenegotiation = p.clientRenegotiation(ctx, r, cert)
	}
	r.Behaviour.FallbackSCSV = p.fallbackSCSV(ctx, r)
	return vulns
}

// fallbackSCSV offers the second-best protocol with TLS_FALLBACK_SCSV:
// a server that protects against downgrades refuses with
// inappropriate_fallback.
func (p *prober) fallbackSCSV(ctx context.Context, r *Report) string {
	var vs []uint16
	for _, pr := range r.Protocols {
		if pr.Offered && pr.Version >= VersionSSL3 {
			vs = append(vs, pr.Version)
		}
	}
	if len(vs) < 2 {
		return "n/a"
	}
	lower := vs[len(vs)-2]
	ch := p.baseHello(lower, append(suitesFor(lower), suiteFallbackSCSV))
	res, err := p.hello(ctx, ch, false, false)
	if err != nil {
		r.Errors = append(r.Errors, fmt.Sprintf("fallback SCSV: %v", err))
		return "not tested"
	}
	if res.alert != nil && res.alert.desc == alertInappropriateFallback {
		return "supported"
	}
	if res.accepted() {
		return "not supported"
	}
	if res.alert != nil {
		return fmt.Sprintf("refused with %s", alertName(res.alert.desc))
	}
	return "supported" // closed without accepting the downgrade
}

// heartbleed offers the heartbeat extension; when the server accepts
// it, it sends a heartbeat request claiming 16 KiB of payload while
// carrying none (before the handshake finishes, in the clear, as
// testssl.sh does). A patched server discards it; a vulnerable one
// answers with its memory.
func (p *prober) heartbleed(ctx context.Context, r *Report, v uint16, suites []uint16) Vuln {
	out := Vuln{ID: "heartbleed", Name: "Heartbleed", CVE: "CVE-2014-0160", Method: "probed"}
	ch := p.baseHello(v, suites)
	ch.heartbeat = true
	res, err := p.hello(ctx, ch, true, true)
	if err != nil {
		out.Status, out.Detail = NotTested, err.Error()
		return out
	}
	if res.c != nil {
		defer res.c.Close()
	}
	if !res.accepted() {
		out.Status, out.Detail = NotTested, "the handshake failed"
		return out
	}
	if _, ok := res.hello.extensions[extHeartbeat]; !ok {
		out.Status, out.Detail = NotVulnerable, "heartbeat extension not supported"
		return out
	}
	r.Behaviour.Heartbeat = true
	if !res.done || res.c == nil {
		out.Status, out.Detail = NotTested, "ServerHelloDone not reached"
		return out
	}
	// heartbeat_request, payload_length 0x4000, no payload.
	req := records(recordHeartbeat, v, []byte{1, 0x40, 0x00})
	if _, err := res.c.Write(req); err != nil {
		out.Status, out.Detail = NotVulnerable, "connection closed on the malformed heartbeat"
		return out
	}
	res.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		typ, payload, err := res.c.readRecord()
		if err != nil {
			out.Status, out.Detail = NotVulnerable, "malformed heartbeat ignored or refused"
			return out
		}
		if typ == recordHeartbeat && len(payload) > 3 {
			out.Status, out.Detail = Vulnerable, fmt.Sprintf("the server returned %d bytes of memory", len(payload))
			return out
		}
		if typ == recordAlert {
			out.Status, out.Detail = NotVulnerable, "malformed heartbeat refused with an alert"
			return out
		}
	}
}

// ccsInjection sends ChangeCipherSpec before any key exchange. A patched
// server refuses it with unexpected_message; a vulnerable one (OpenSSL
// before 1.0.1h) takes it and later fails to decrypt.
func (p *prober) ccsInjection(ctx context.Context, v uint16, suites []uint16) Vuln {
	out := Vuln{ID: "ccs_injection", Name: "CCS injection", CVE: "CVE-2014-0224", Method: "probed"}
	res, err := p.hello(ctx, p.baseHello(v, suites), true, true)
	if err != nil {
		out.Status, out.Detail = NotTested, err.Error()
		return out
	}
	if res.c != nil {
		defer res.c.Close()
	}
	if !res.accepted() || !res.done || res.c == nil {
		out.Status, out.Detail = NotTested, "ServerHelloDone not reached"
		return out
	}
	ccs := records(recordCCS, v, []byte{1})
	if _, err := res.c.Write(ccs); err != nil {
		out.Status, out.Detail = NotVulnerable, "connection closed on the early ChangeCipherSpec"
		return out
	}
	// A second CCS makes an accepting server try to decrypt it.
	res.c.Write(ccs)
	res.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	typ, payload, err := res.c.readRecord()
	switch {
	case err != nil:
		out.Status, out.Detail = NotVulnerable, "connection closed on the early ChangeCipherSpec"
	case typ == recordAlert && len(payload) == 2 && payload[1] == 10:
		out.Status, out.Detail = NotVulnerable, "early ChangeCipherSpec refused (unexpected_message)"
	case typ == recordAlert && len(payload) == 2 && (payload[1] == 20 || payload[1] == 21):
		out.Status, out.Detail = Vulnerable, fmt.Sprintf("early ChangeCipherSpec accepted (then %s)", alertName(payload[1]))
	case typ == recordAlert && len(payload) == 2:
		out.Status, out.Detail = NotVulnerable, fmt.Sprintf("early ChangeCipherSpec refused (%s)", alertName(payload[1]))
	default:
		out.Status, out.Detail = NotTested, fmt.Sprintf("unexpected answer (record type %d)", typ)
	}
	return out
}

// inferredVulns judges the vulnerabilities that follow from what is
// offered.
func (r *Report) inferredVulns() []Vuln {
	offered := map[uint16]*Protocol{}
	for i := range r.Protocols {
		if r.Protocols[i].Offered {
			offered[r.Protocols[i].Version] = &r.Protocols[i]
		}
	}
	with := func(f func(Suite) bool, versions ...uint16) []string {
		var names []string
		for _, v := range versions {
			if p := offered[v]; p != nil {
				for _, s := range p.Suites {
					if f(s) && !slices.Contains(names, s.OpenSSL) {
						names = append(names, s.OpenSSL)
					}
				}
			}
		}
		return names
	}
	legacy := []uint16{VersionSSL3, VersionTLS10, VersionTLS11, VersionTLS12}
	list := func(n []string) string {
		if len(n) > 4 {
			return fmt.Sprintf("%s and %d more", joinComma(n[:4]), len(n)-4)
		}
		return joinComma(n)
	}
	var out []Vuln
	add := func(id, name, cve string, status VulnStatus, method, detail string) {
		out = append(out, Vuln{ID: id, Name: name, CVE: cve, Status: status, Method: method, Detail: detail})
	}
	// POODLE (SSL): SSLv3 with CBC.
	if cbc := with(func(s Suite) bool { return s.CBC }, VersionSSL3); len(cbc) > 0 {
		add("poodle_ssl", "POODLE (SSLv3)", "CVE-2014-3566", Vulnerable, "inferred", "SSLv3 with CBC: "+list(cbc))
	} else {
		add("poodle_ssl", "POODLE (SSLv3)", "CVE-2014-3566", NotVulnerable, "inferred", "no SSLv3 with CBC")
	}
	// BEAST: CBC with SSLv3/TLS 1.0; mitigated by clients (1/n-1 split).
	if cbc := with(func(s Suite) bool { return s.CBC }, VersionSSL3, VersionTLS10); len(cbc) > 0 {
		d := "CBC with TLS 1.0 or SSLv3: " + list(cbc)
		if offered[VersionTLS12] != nil || offered[VersionTLS13] != nil {
			d += " (higher protocols are offered; clients mitigate it)"
		}
		add("beast", "BEAST", "CVE-2011-3389", Exposed, "inferred", d)
	} else {
		add("beast", "BEAST", "CVE-2011-3389", NotVulnerable, "inferred", "no CBC with TLS 1.0 or SSLv3")
	}
	// SWEET32: 64-bit block ciphers.
	if b := with(func(s Suite) bool { return s.Block64 }, legacy...); len(b) > 0 {
		add("sweet32", "SWEET32", "CVE-2016-2183", Vulnerable, "inferred", "64-bit block ciphers: "+list(b))
	} else {
		add("sweet32", "SWEET32", "CVE-2016-2183", NotVulnerable, "inferred", "no 64-bit block ciphers")
	}
	// FREAK: RSA export suites.
	if e := with(func(s Suite) bool { return s.Export && s.Kx == "RSA" }, legacy...); len(e) > 0 {
		add("freak", "FREAK", "CVE-2015-0204", Vulnerable, "probed", "RSA export suites accepted: "+list(e))
	} else {
		add("freak", "FREAK", "CVE-2015-0204", NotVulnerable, "probed", "no RSA export suite accepted")
	}
	// Logjam: DHE export suites or a weak DH group. A common prime of
	// 1024 bits or less is one a single precomputation breaks for every
	// server that shares it (weakdh.org; testssl.sh calls it vulnerable).
	common := ""
	if r.DHCommonPrime != "" {
		common = ", common prime (" + r.DHCommonPrime + ")"
	}
	switch e := with(func(s Suite) bool { return s.Export && (s.Kx == "DHE" || s.Kx == "DH") }, legacy...); {
	case len(e) > 0:
		add("logjam", "Logjam", "CVE-2015-4000", Vulnerable, "probed", "DHE export suites accepted: "+list(e))
	case r.DHBits > 0 && r.DHBits < 1024:
		add("logjam", "Logjam", "CVE-2015-4000", Vulnerable, "probed", fmt.Sprintf("DH group of %d bits%s", r.DHBits, common))
	case r.DHBits > 0 && r.DHBits <= 1024 && common != "":
		add("logjam", "Logjam", "CVE-2015-4000", Vulnerable, "probed", fmt.Sprintf("DH group of %d bits%s: precomputable", r.DHBits, common))
	case r.DHBits > 0 && r.DHBits < 2048:
		add("logjam", "Logjam", "CVE-2015-4000", Exposed, "probed", fmt.Sprintf("DH group of %d bits (below 2048)%s", r.DHBits, common))
	case r.DHBits > 0:
		add("logjam", "Logjam", "CVE-2015-4000", NotVulnerable, "probed", fmt.Sprintf("no DHE export suites; DH group of %d bits%s", r.DHBits, common))
	default:
		add("logjam", "Logjam", "CVE-2015-4000", NotVulnerable, "probed", "no DHE export suites, no DHE key exchange")
	}
	// DROWN: SSLv2 on this port (other servers sharing the key are out of reach).
	if offered[VersionSSL2] != nil {
		add("drown", "DROWN", "CVE-2016-0800", Vulnerable, "probed", "SSLv2 is offered")
	} else {
		add("drown", "DROWN", "CVE-2016-0800", NotVulnerable, "probed", "SSLv2 not offered on this port (other servers with the same key are not checked)")
	}
	// LUCKY13: CBC in TLS; implementations mitigate it.
	if cbc := with(func(s Suite) bool { return s.CBC }, legacy...); len(cbc) > 0 {
		add("lucky13", "LUCKY13", "CVE-2013-0169", Exposed, "inferred", "CBC suites offered: "+list(cbc))
	} else {
		add("lucky13", "LUCKY13", "CVE-2013-0169", NotVulnerable, "inferred", "no CBC suites")
	}
	// RC4.
	if rc4 := with(func(s Suite) bool { return s.RC4 }, legacy...); len(rc4) > 0 {
		add("rc4", "RC4", "CVE-2013-2566", Vulnerable, "probed", "RC4 suites accepted: "+list(rc4))
	} else {
		add("rc4", "RC4", "CVE-2013-2566", NotVulnerable, "probed", "no RC4 suite accepted")
	}
	return out
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

var errNoLegacy = errors.New("no TLS 1.0-1.2 protocol offered")
