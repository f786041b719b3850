package scan

import (
	"fmt"
	"io"
	"strings"
)

// WriteText writes the report for people, grouped as SSL Labs groups it:
// summary, certificate, configuration, protocol details, client
// certificates, HTTP. With color, verdicts are coloured (for terminals).
func WriteText(w io.Writer, r *Report, color bool) error {
	p := &printer{w: w, color: color}
	name := r.ServerName
	if name == "" {
		name = "no SNI"
	}
	p.f("gatehouse scan %s (%s), %.1f s\n\n", r.Target, name, float64(r.DurationMS)/1000)

	g := r.Grade
	p.f("Overall rating: %s", p.grade(g.Grade))
	if g.GradeIgnoringTrust != "" {
		p.f(" (%s if trust issues are ignored)", g.GradeIgnoringTrust)
	}
	p.f("\n  score %d: protocol %d, key exchange %d, cipher strength %d\n", g.Score, g.ProtocolScore, g.KeyExchangeScore, g.CipherScore)
	for _, c := range g.Caps {
		p.f("  capped at %-2s %s\n", c.Grade, c.Reason)
	}
	for _, w := range g.Warnings {
		p.f("  %s %s\n", p.paint(yellow, "warning"), w)
	}

	p.section("Certificate")
	cr := r.Certificates
	if len(cr.Chain) > 0 {
		l := cr.Chain[0]
		p.kv("Subject", l.Subject)
		p.kv("Names (SAN)", orNone(strings.Join(l.SAN, ", ")))
		p.kv("Name match", p.yesno(cr.NameMatch, true)+" for "+orNone(r.ServerName))
		p.kv("Valid", fmt.Sprintf("%s to %s (%d days left)", l.NotBefore.Format("2006-01-02"), l.NotAfter.Format("2006-01-02"), cr.DaysLeft))
		if cr.Expired {
			p.kv("Expired", p.paint(red, "yes"))
		}
		p.kv("Key", fmt.Sprintf("%s %d bits", l.KeyType, l.KeyBits))
		sig := l.SigAlg
		if l.WeakSig {
			sig = p.paint(red, sig+" (weak)")
		}
		p.kv("Signature", sig)
		p.kv("EKU", orNone(strings.Join(l.EKU, ", ")))
		p.kv("Issuer", l.Issuer)
		trust := p.paint(green, "yes")
		if !cr.Trusted {
			trust = p.paint(red, "no: "+cr.TrustError)
		}
		p.kv("Trusted", trust)
		p.kv("OCSP stapling", stapleText(p, cr))
		if cr.CRL != "" {
			p.kv("CRL", cr.CRL)
		}
		if cr.OCSP != "" {
			p.kv("OCSP", cr.OCSP)
		}
		p.f("  Chain as served (%d):\n", len(cr.Chain))
		for i, c := range cr.Chain {
			extra := ""
			if c.SelfSigned {
				extra = " (self-signed root)"
			}
			p.f("    %d %s, issued by %s, %s %d%s\n", i, c.Subject, c.Issuer, c.KeyType, c.KeyBits, extra)
		}
		chain := []string{}
		if !cr.InOrder {
			chain = append(chain, p.paint(yellow, "out of order"))
		}
		if cr.Incomplete {
			chain = append(chain, p.paint(red, "incomplete (missing intermediate)"))
		}
		if cr.RootSent {
			chain = append(chain, p.paint(yellow, "root sent needlessly"))
		}
		if len(chain) == 0 {
			chain = append(chain, p.paint(green, "complete, in order"))
		}
		p.kv("Chain issues", strings.Join(chain, ", "))
	} else {
		p.kv("Certificate", p.paint(red, orNone(cr.TrustError)))
	}

	p.section("Configuration")
	for _, pr := range r.Protocols {
		bad := pr.Version <= VersionTLS11
		p.kv(pr.Name, p.yesno(pr.Offered, !bad))
	}
	for i := len(r.Protocols) - 1; i >= 0; i-- {
		pr := r.Protocols[i]
		if !pr.Offered || len(pr.Suites) == 0 {
			continue
		}
		order := "client's order"
		if pr.ServerOrder {
			order = "server's order"
		}
		p.f("  Cipher suites, %s (%s):\n", pr.Name, order)
		for _, s := range pr.Suites {
			p.f("    %-45s %-31s %3d %s\n", s.Name, s.OpenSSL, s.Bits, p.suiteTags(s))
		}
	}
	p.kv("Groups", orNone(strings.Join(r.Groups, ", ")))
	if len(r.SignatureAlgorithms) > 0 {
		p.kv("Signature algs", strings.Join(r.SignatureAlgorithms, ", "))
	}
	if len(r.SignatureAlgorithms13) > 0 {
		p.kv("Signature algs TLS 1.3", strings.Join(r.SignatureAlgorithms13, ", "))
	}
	if r.DHBits > 0 {
		dh := fmt.Sprintf("%d bits", r.DHBits)
		if r.DHCommonPrime != "" {
			dh += ", common prime (" + r.DHCommonPrime + ")"
		}
		p.kv("DH prime", dh)
	}

	p.section("Protocol details")
	b := r.Behaviour
	p.kv("Secure renegotiation", p.yesno(b.SecureRenegotiation, true))
	p.kv("Client renegotiation", b.ClientRenegotiation)
	p.kv("Compression", p.yesno(b.Compression, false))
	p.kv("Session tickets", fmt.Sprint(yn(b.SessionTickets)))
	p.kv("Session IDs", fmt.Sprintf("%s (resumed: %s)", yn(b.SessionIDs), yn(b.SessionIDResumption)))
	p.kv("Resumption", fmt.Sprint(yn(b.Resumption)))
	p.kv("ALPN", orNone(strings.Join(b.ALPN, ", ")))
	p.kv("Fallback SCSV", b.FallbackSCSV)
	p.kv("Heartbeat", fmt.Sprint(yn(b.Heartbeat)))
	for _, v := range r.Vulns {
		col := green
		switch v.Status {
		case Vulnerable:
			col = red
		case Exposed, NotTested:
			col = yellow
		}
		p.f("  %-26s %s (%s) %s\n", v.Name, p.paint(col, string(v.Status)), v.Method, v.Detail)
	}

	p.section("Client certificates (mTLS)")
	for _, c := range r.MTLS {
		p.f("  %-50s %s %s\n", c.Name, p.status(c.Status), c.Detail)
	}

	if r.HTTP != nil {
		p.section("HTTP")
		p.kv("Status", fmt.Sprint(r.HTTP.Status))
		hsts := p.paint(red, "none")
		if r.HTTP.HSTS != "" {
			col := green
			if r.HTTP.HSTSMaxAge < hstsMinAge {
				col = yellow
			}
			hsts = p.paint(col, fmt.Sprintf("%s (max-age %d days)", r.HTTP.HSTS, r.HTTP.HSTSMaxAge/86400))
		}
		p.kv("HSTS", hsts)
	}
	if len(r.Errors) > 0 {
		p.section("Probes that failed")
		for _, e := range r.Errors {
			p.f("  %s\n", e)
		}
	}
	return p.err
}

func stapleText(p *printer, cr Certificates) string {
	if !cr.OCSPStapled {
		return "no"
	}
	col := green
	if cr.OCSPStaple != "good" {
		col = red
	}
	return p.paint(col, "yes, "+cr.OCSPStaple)
}

func yn(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

const (
	red    = "31"
	green  = "32"
	yellow = "33"
)

type printer struct {
	w     io.Writer
	color bool
	err   error
}

func (p *printer) f(format string, a ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, a...)
	}
}

func (p *printer) section(name string) { p.f("\n%s\n", name) }

func (p *printer) kv(k, v string) { p.f("  %-22s %s\n", k, v) }

func (p *printer) paint(code, s string) string {
	if !p.color {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// yesno prints yes/no, green when it is the wanted answer.
func (p *printer) yesno(v, want bool) string {
	col := red
	if v == want {
		col = green
	}
	return p.paint(col, yn(v))
}

func (p *printer) grade(g string) string {
	col := green
	switch {
	case strings.HasPrefix(g, "A"):
	case g == "B" || g == "C":
		col = yellow
	default:
		col = red
	}
	return p.paint(col, g)
}

func (p *printer) status(s Status) string {
	col := ""
	switch s {
	case Pass:
		col = green
	case Fail:
		col = red
	case Warn, Inconclusive:
		col = yellow
	}
	label := fmt.Sprintf("%-4s", string(s))
	if col == "" {
		return label
	}
	return p.paint(col, label)
}

func (p *printer) suiteTags(s Suite) string {
	var tags []string
	bad := s.Null || s.Export || s.Anon || s.RC4
	weak := s.CBC || s.Block64 || !s.FS
	if s.AEAD {
		tags = append(tags, "AEAD")
	}
	if s.FS {
		tags = append(tags, "FS")
	}
	for _, t := range []struct {
		on   bool
		name string
	}{{s.CBC, "CBC"}, {s.RC4, "RC4"}, {s.Block64, "64-bit block"}, {s.Null, "NULL"}, {s.Export, "EXPORT"}, {s.Anon, "anonymous"}} {
		if t.on {
			tags = append(tags, t.name)
		}
	}
	if !s.FS {
		tags = append(tags, "no FS")
	}
	out := strings.Join(tags, " ")
	switch {
	case bad:
		return p.paint(red, out)
	case weak:
		return p.paint(yellow, out)
	}
	return p.paint(green, out)
}
