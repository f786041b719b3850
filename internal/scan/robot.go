package scan

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// robot probes for a Bleichenbacher padding oracle (ROBOT, 2017): it
// sends ClientKeyExchange messages whose RSA plaintext is correctly
// formatted, or wrong in one of four ways, each followed by
// ChangeCipherSpec and a garbage Finished, and compares the answers. A
// server whose answer depends on the padding is an oracle. It never
// decrypts anything and sends at most a handful of connections.
func (p *prober) robot(ctx context.Context, r *Report) Vuln {
	out := Vuln{ID: "robot", Name: "ROBOT", CVE: "CVE-2017-13099", Method: "probed"}
	var rsaKx []uint16
	var version uint16
	for i := len(r.Protocols) - 1; i >= 0; i-- {
		pr := r.Protocols[i]
		if !pr.Offered || pr.Version > VersionTLS12 || pr.Version < VersionSSL3 {
			continue
		}
		for _, s := range pr.Suites {
			if s.Kx == "RSA" && !s.Export {
				rsaKx = append(rsaKx, s.ID)
			}
		}
		if len(rsaKx) > 0 {
			version = pr.Version
			break
		}
	}
	if len(rsaKx) == 0 {
		out.Status, out.Detail, out.Method = NotVulnerable, "no RSA key exchange suite accepted", "inferred"
		return out
	}
	answers := make([]string, 5)
	for variant := range answers {
		a, err := p.robotVariant(ctx, version, rsaKx, variant)
		if err != nil {
			out.Status, out.Detail = NotTested, err.Error()
			return out
		}
		answers[variant] = a
	}
	for _, a := range answers[1:] {
		if a != answers[0] {
			out.Status = Vulnerable
			out.Detail = fmt.Sprintf("answers depend on the RSA padding: %q", answers)
			return out
		}
	}
	out.Status, out.Detail = NotVulnerable, fmt.Sprintf("the same answer to all five paddings (%s)", answers[0])
	return out
}

// robotVariant runs one handshake with padding variant v and returns the
// server's answer.
func (p *prober) robotVariant(ctx context.Context, version uint16, suites []uint16, v int) (string, error) {
	res, err := p.hello(ctx, p.baseHello(version, suites), true, true)
	if err != nil {
		return "", err
	}
	if res.c != nil {
		defer res.c.Close()
	}
	if !res.accepted() || !res.done || res.c == nil || len(res.certs) == 0 {
		return "", errors.New("robot: the RSA handshake did not reach ServerHelloDone")
	}
	pub, err := rsaKey(res.certs[0])
	if err != nil {
		return "", err
	}
	k := (pub.N.BitLen() + 7) / 8
	if k < 64 {
		return "", errors.New("robot: RSA key too small to probe")
	}
	m := robotPlaintext(k, version, v)
	c := new(big.Int).Exp(new(big.Int).SetBytes(m), big.NewInt(int64(pub.E)), pub.N).FillBytes(make([]byte, k))
	b := cryptobyte.NewBuilder(nil)
	b.AddUint8(16) // client_key_exchange
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		if version == VersionSSL3 {
			b.AddBytes(c)
		} else {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c) })
		}
	})
	var finished [48]byte
	rand.Read(finished[:])
	msg := records(recordHandshake, version, b.BytesOrPanic())
	msg = append(msg, records(recordCCS, version, []byte{1})...)
	msg = append(msg, records(recordHandshake, version, finished[:])...)
	if _, err := res.c.Write(msg); err != nil {
		return "write failed", nil
	}
	res.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	typ, payload, err := res.c.readRecord()
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout", nil
	case err != nil:
		return "closed", nil
	case typ == recordAlert && len(payload) == 2:
		// Also note whether the connection then closes, as the ROBOT
		// paper's oracles differ in that too.
		_, _, err2 := res.c.readRecord()
		tail := "then closed"
		if errors.Is(err2, os.ErrDeadlineExceeded) {
			tail = "then open"
		}
		return "alert " + alertName(payload[1]) + " " + tail, nil
	}
	return fmt.Sprintf("record type %d", typ), nil
}

// robotPlaintext is the PKCS#1 v1.5 block for variant v: 0 correct,
// 1 wrong first bytes, 2 separator misplaced, 3 no separator, 4 wrong
// protocol version in the premaster secret.
func robotPlaintext(k int, version uint16, v int) []byte {
	m := make([]byte, k)
	m[0], m[1] = 0x00, 0x02
	pad := m[2 : k-49]
	rand.Read(pad)
	for i := range pad {
		for pad[i] == 0 {
			var b [1]byte
			rand.Read(b[:])
			pad[i] = b[0]
		}
	}
	m[k-49] = 0
	pms := m[k-48:]
	rand.Read(pms)
	pms[0], pms[1] = byte(version>>8), byte(version)
	switch v {
	case 1:
		m[0], m[1] = 0x41, 0x17
	case 2:
		m[k-49] = 0x11
		m[k-20] = 0x00 // the separator moves into the secret
	case 3:
		m[k-49] = 0x11
		for i := k - 48; i < k; i++ {
			if m[i] == 0 {
				m[i] = 0x01
			}
		}
	case 4:
		pms[0], pms[1] = 0x02, 0x02
	}
	return m
}

// rsaKey returns the RSA public key of a DER certificate.
func rsaKey(der []byte) (*rsa.PublicKey, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("robot: parse certificate: %w", err)
	}
	pub, ok := c.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("robot: the certificate key is not RSA")
	}
	return pub, nil
}

// rdnString renders a DER distinguished name (from a CertificateRequest).
func rdnString(der []byte) string {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(der, &seq); err != nil || len(rest) > 0 {
		return fmt.Sprintf("(unparsable name, %d bytes)", len(der))
	}
	var n pkix.Name
	n.FillFromRDNSequence(&seq)
	return n.String()
}
