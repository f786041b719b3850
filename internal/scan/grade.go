package scan

import (
	"fmt"
	"slices"
)

// The grade follows SSL Labs' Server Rating Guide (2009r) and its
// announced changes (2014 POODLE, 2017 3DES, 2018 forward secrecy, AEAD
// and ROBOT, 2020 TLS 1.0/1.1): a numeric score from protocol support,
// key exchange and cipher strength, then caps. docs/scan.md lists every
// rule and where testssl.sh differs.

// gradeOrder ranks letters from best to worst; T and M (trust and name)
// rank below F for --fail-below.
var gradeOrder = []string{"A+", "A", "A-", "B", "C", "D", "E", "F", "M", "T"}

// GradeRank returns a grade's rank (0 is best) and whether it is one.
func GradeRank(g string) (int, bool) {
	i := slices.Index(gradeOrder, g)
	return i, i >= 0
}

// GradeBelow reports whether grade g is worse than min.
func GradeBelow(g, min string) bool {
	a, _ := GradeRank(g)
	b, _ := GradeRank(min)
	return a > b
}

// hstsMinAge is the HSTS max-age A+ requires: 180 days.
const hstsMinAge = 180 * 24 * 3600

func protocolScore(v uint16) int {
	switch v {
	case VersionSSL2:
		return 0
	case VersionSSL3:
		return 80
	case VersionTLS10:
		return 90
	case VersionTLS11:
		return 95
	}
	return 100
}

func kxBitsScore(bits int) int {
	switch {
	case bits <= 0:
		return 0
	case bits < 512:
		return 20
	case bits < 1024:
		return 40
	case bits < 2048:
		return 80
	case bits < 4096:
		return 90
	}
	return 100
}

func cipherScore(bits int) int {
	switch {
	case bits <= 0:
		return 0
	case bits < 128:
		return 20
	case bits < 256:
		return 80
	}
	return 100
}

func scoreLetter(score int) string {
	switch {
	case score >= 80:
		return "A"
	case score >= 65:
		return "B"
	case score >= 50:
		return "C"
	case score >= 35:
		return "D"
	case score >= 20:
		return "E"
	}
	return "F"
}

// suiteKxBits is the strength of a suite's key exchange on this server.
func (r *Report) suiteKxBits(s Suite) int {
	switch {
	case s.Anon:
		return 0
	case s.Export:
		return 512
	case s.Kx == "RSA" || s.Kx == "ECDH" || s.Kx == "DH":
		return r.leafKeyStrength()
	case s.Kx == "DHE":
		if r.DHBits > 0 {
			return r.DHBits
		}
		return 2048
	case s.Kx == "PSK":
		return 128
	}
	// ECDHE and TLS 1.3: the weakest group offered.
	bits := 0
	for _, g := range r.Groups {
		for id, n := range groupNames {
			if n == g && (bits == 0 || groupBits[id] < bits) {
				bits = groupBits[id]
			}
		}
	}
	if bits == 0 {
		bits = 3072
	}
	return bits
}

// leafKeyStrength is the leaf key's RSA-equivalent strength.
func (r *Report) leafKeyStrength() int {
	if len(r.Certificates.Chain) == 0 {
		return 2048
	}
	c := r.Certificates.Chain[0]
	switch c.KeyType {
	case "RSA", "DSA":
		return c.KeyBits
	case "Ed25519":
		return 3072
	case "ECDSA":
		switch {
		case c.KeyBits >= 521:
			return 15360
		case c.KeyBits >= 384:
			return 7680
		case c.KeyBits >= 256:
			return 3072
		}
		return 2048
	}
	return c.KeyBits
}

// computeGrade fills r.Grade from the rest of the report.
func (r *Report) computeGrade() {
	g := Grade{Caps: []Cap{}, Warnings: []string{}}
	capTo := func(grade, format string, args ...any) {
		g.Caps = append(g.Caps, Cap{Grade: grade, Reason: fmt.Sprintf(format, args...)})
	}
	warn := func(format string, args ...any) { g.Warnings = append(g.Warnings, fmt.Sprintf(format, args...)) }

	var offered []Protocol
	for _, p := range r.Protocols {
		if p.Offered {
			offered = append(offered, p)
		}
	}
	if len(offered) == 0 {
		g.Grade = "F"
		capTo("F", "no SSL/TLS protocol could be negotiated")
		r.Grade = g
		return
	}
	// Protocol support: the average of the best and the worst.
	best, worst := 0, 100
	kxBest, kxWorst, cBest, cWorst := 0, 100, 0, 100
	var all []Suite
	for _, p := range offered {
		s := protocolScore(p.Version)
		best, worst = max(best, s), min(worst, s)
		for _, su := range p.Suites {
			all = append(all, su)
			k := kxBitsScore(r.suiteKxBits(su))
			kxBest, kxWorst = max(kxBest, k), min(kxWorst, k)
			c := cipherScore(su.Bits)
			cBest, cWorst = max(cBest, c), min(cWorst, c)
		}
	}
	if len(all) == 0 {
		kxBest, kxWorst, cBest, cWorst = 0, 0, 0, 0
	}
	g.ProtocolScore = (best + worst) / 2
	// Key exchange: the weakest one offered decides.
	g.KeyExchangeScore = kxWorst
	g.CipherScore = (cBest + cWorst) / 2
	g.Score = (30*g.ProtocolScore + 30*g.KeyExchangeScore + 40*g.CipherScore + 50) / 100
	if g.Score < 80 {
		capTo(scoreLetter(g.Score), "score %d (protocol %d, key exchange %d, cipher %d)", g.Score, g.ProtocolScore, g.KeyExchangeScore, g.CipherScore)
	}

	has := func(v uint16) bool {
		for _, p := range offered {
			if p.Version == v {
				return true
			}
		}
		return false
	}
	anySuite := func(f func(Suite) bool) bool { return slices.ContainsFunc(all, f) }

	// F: broken beyond use.
	if has(VersionSSL2) {
		capTo("F", "SSLv2 is offered (DROWN)")
	}
	if anySuite(func(s Suite) bool { return s.Export }) {
		capTo("F", "export cipher suites are offered (FREAK, Logjam)")
	}
	if anySuite(func(s Suite) bool { return s.Anon }) {
		capTo("F", "anonymous (unauthenticated) cipher suites are offered")
	}
	if anySuite(func(s Suite) bool { return s.Null }) {
		capTo("F", "NULL (unencrypted) cipher suites are offered")
	}
	for _, v := range r.Vulns {
		if v.Status != Vulnerable {
			continue
		}
		switch v.ID {
		case "heartbleed", "ccs_injection", "ticketbleed", "robot", "poodle_tls", "drown", "logjam", "freak":
			capTo("F", "vulnerable to %s", v.Name)
		case "crime":
			capTo("C", "TLS compression is enabled (CRIME)")
		case "poodle_ssl":
			capTo("C", "SSLv3 with CBC suites (POODLE)")
		}
	}
	if r.Behaviour.ClientRenegotiation == "accepted" && !r.Behaviour.SecureRenegotiation {
		capTo("F", "insecure client-initiated renegotiation is accepted")
	}
	if c := r.Certificates; c.CRL == "revoked" || c.OCSP == "revoked" || c.OCSPStaple == "revoked" {
		capTo("F", "the certificate is revoked")
	}
	if k := r.leafKeyStrength(); len(r.Certificates.Chain) > 0 && k < 1024 {
		capTo("F", "the certificate key is %d bits", k)
	}
	if r.DHBits > 0 && r.DHBits < 1024 {
		capTo("F", "DH parameters of %d bits (Logjam)", r.DHBits)
	}
	// C.
	if has(VersionSSL3) && !slices.ContainsFunc(g.Caps, func(c Cap) bool { return c.Grade == "C" && c.Reason == "SSLv3 with CBC suites (POODLE)" }) {
		capTo("C", "SSLv3 is offered")
	}
	if anySuite(func(s Suite) bool { return s.RC4 }) {
		capTo("C", "RC4 cipher suites are offered")
	}
	if !has(VersionTLS12) && !has(VersionTLS13) {
		capTo("C", "TLS 1.2 is not supported")
	}
	for _, p := range offered {
		if p.Version < VersionTLS11 || p.Version == VersionTLS13 {
			continue
		}
		if i := slices.IndexFunc(p.Suites, func(s Suite) bool { return s.Block64 }); i >= 0 {
			last := true
			for _, s := range p.Suites[i:] {
				if !s.Block64 {
					last = false
				}
			}
			if !p.ServerOrder || !last {
				capTo("C", "64-bit block cipher %s with %s, not last in the server's order (SWEET32)", p.Suites[i].OpenSSL, p.Name)
				break
			}
		}
	}
	// B.
	if has(VersionTLS10) || has(VersionTLS11) {
		capTo("B", "TLS 1.0 or TLS 1.1 is offered")
	}
	if !r.prefersFS() {
		capTo("B", "forward secrecy is not used with modern clients")
	}
	if !anySuite(func(s Suite) bool { return s.AEAD }) {
		capTo("B", "no AEAD cipher suite is offered")
	}
	if r.Certificates.Incomplete {
		capTo("B", "the served chain is incomplete (missing intermediate)")
	}
	if k := r.leafKeyStrength(); len(r.Certificates.Chain) > 0 && k >= 1024 && k < 2048 {
		capTo("B", "the certificate key is %d bits", k)
	}
	if r.DHBits >= 1024 && r.DHBits < 2048 {
		capTo("B", "DH parameters of %d bits", r.DHBits)
	}
	// A-: warnings.
	if !r.Behaviour.SecureRenegotiation && (has(VersionTLS12) || has(VersionTLS11) || has(VersionTLS10) || has(VersionSSL3)) {
		warn("secure renegotiation is not supported")
	}
	if r.Behaviour.ClientRenegotiation == "accepted" && r.Behaviour.SecureRenegotiation {
		warn("client-initiated renegotiation is accepted (a denial-of-service lever)")
	}
	if r.Behaviour.FallbackSCSV == "not supported" {
		warn("TLS_FALLBACK_SCSV is not supported (downgrade protection)")
	}
	if r.Certificates.RootSent {
		warn("the chain includes the root certificate (sent needlessly)")
	}
	if !r.Certificates.InOrder && len(r.Certificates.Chain) > 1 {
		warn("the chain is not in order")
	}
	if n := r.Behaviour.InternalErrors; n > 0 {
		warn("the server sent %d internal_error alerts during the scan: it failed those handshakes rather than refused them, so what the report shows as not offered may be offered (a handshake rate limit answers so, e.g. gatehouse's limits.failed_handshakes_per_ip: scan again once it refills, or from an address it exempts)", n)
	}
	for _, c := range r.MTLS {
		switch c.Status {
		case Fail:
			warn("mTLS: %s: %s", c.Name, c.Detail)
		case Inconclusive:
			warn("mTLS: %s: inconclusive: %s", c.Name, c.Detail)
		}
	}
	if len(g.Warnings) > 0 {
		capTo("A-", "warnings: %d", len(g.Warnings))
	}

	grade := scoreLetter(g.Score)
	for _, c := range g.Caps {
		if GradeBelow(c.Grade, grade) {
			grade = c.Grade
		}
	}
	if grade == "A" && len(g.Warnings) == 0 {
		switch {
		case r.HTTP == nil:
			capTo("A", "A+ needs HSTS, checked only with --http")
		case r.HTTP.HSTSMaxAge < hstsMinAge:
			capTo("A", "A+ needs HSTS with max-age of at least 180 days (got %d s)", r.HTTP.HSTSMaxAge)
		default:
			grade = "A+"
		}
	}
	// T and M replace the letter; the letter is kept beside them.
	trust := ""
	if len(r.Certificates.Chain) > 0 {
		switch {
		case !r.Certificates.Trusted:
			trust = "T"
			capTo("T", "the certificate is not trusted: %s", r.Certificates.TrustError)
		case !r.Certificates.NameMatch:
			trust = "M"
			capTo("M", "the certificate does not match the name %q", r.ServerName)
		}
		if !r.Certificates.NameMatch && trust == "T" {
			capTo("M", "the certificate does not match the name %q", r.ServerName)
		}
	}
	if trust != "" {
		g.GradeIgnoringTrust = grade
		grade = trust
	}
	g.Grade = grade
	r.Grade = g
}

// prefersFS reports whether modern clients get forward secrecy: TLS 1.3
// is offered, or the server's first choice with its best TLS 1.0-1.2
// protocol is an FS suite.
func (r *Report) prefersFS() bool {
	for i := len(r.Protocols) - 1; i >= 0; i-- {
		p := r.Protocols[i]
		if !p.Offered || len(p.Suites) == 0 {
			continue
		}
		if p.Version == VersionTLS13 {
			return true
		}
		if p.ServerOrder {
			return p.Suites[0].FS
		}
		return slices.ContainsFunc(p.Suites, func(s Suite) bool { return s.FS })
	}
	return false
}
