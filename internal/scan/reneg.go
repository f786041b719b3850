package scan

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	_ "crypto/sha512" // the PRF of SHA-384 suites
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// Client-initiated renegotiation cannot be asked of crypto/tls (its
// client never initiates one), so this probe completes one TLS 1.2
// ECDHE + AES-GCM handshake itself, using crypto/ecdh, crypto/hmac and
// crypto/cipher for the primitives and RFC 5246's PRF and record layer,
// then sends a secure-renegotiation ClientHello under the new keys and
// looks only at the type of the server's next record: handshake means
// it renegotiates, an alert or a close means it refuses. Nothing the
// server sends is decrypted.

// renegSuites are the suites the probe can run, with their PRF hash and
// key length.
var renegSuites = map[uint16]struct {
	hash   crypto.Hash
	keyLen int
}{
	0xC02F: {crypto.SHA256, 16}, 0xC02B: {crypto.SHA256, 16},
	0xC030: {crypto.SHA384, 32}, 0xC02C: {crypto.SHA384, 32},
}

// prf12 is the TLS 1.2 PRF (RFC 5246 section 5).
func prf12(h crypto.Hash, secret []byte, label string, seed []byte, n int) []byte {
	ls := append([]byte(label), seed...)
	out := make([]byte, 0, n)
	mac := hmac.New(h.New, secret)
	mac.Write(ls)
	a := mac.Sum(nil)
	for len(out) < n {
		mac.Reset()
		mac.Write(a)
		mac.Write(ls)
		out = mac.Sum(out)
		mac.Reset()
		mac.Write(a)
		a = mac.Sum(nil)
	}
	return out[:n]
}

// clientRenegotiation reports "refused", "accepted" or "not tested: why".
func (p *prober) clientRenegotiation(ctx context.Context, r *Report, cert *tls.Certificate) string {
	if !r.offered(VersionTLS12) {
		return "not tested: needs TLS 1.2"
	}
	var suite uint16
	for _, pr := range r.Protocols {
		if pr.Version != VersionTLS12 {
			continue
		}
		for _, s := range pr.Suites {
			if _, ok := renegSuites[s.ID]; ok && suite == 0 {
				suite = s.ID
			}
		}
	}
	if suite == 0 {
		return "not tested: needs an ECDHE AES-GCM suite"
	}
	verdict, err := p.renegotiate(ctx, suite, cert)
	if err != nil {
		return "not tested: " + err.Error()
	}
	return verdict
}

func (p *prober) renegotiate(ctx context.Context, suite uint16, cert *tls.Certificate) (string, error) {
	params := renegSuites[suite]
	groups := []uint16{0x001d, 0x0017, 0x0018}
	ch := &clientHello{version: VersionTLS12, suites: []uint16{suite}, serverName: p.sni, groups: groups,
		sigAlgs: sigAlgOrder, renegInfo: true, noEMS: true}
	hello, err := ch.marshal()
	if err != nil {
		return "", err
	}
	c, release, err := p.dialRaw(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := c.Write(hello); err != nil {
		return "", fmt.Errorf("renegotiation probe: %w", err)
	}
	transcript := slices.Clone(ch.message)
	var sh *serverHello
	var kx *keyExchange
	var serverPoint []byte
	certRequested := false
	for done := false; !done; {
		typ, body, err := c.readHandshake()
		if err != nil {
			return "", fmt.Errorf("renegotiation probe: first handshake: %w", err)
		}
		transcript = append(transcript, typ, byte(len(body)>>16), byte(len(body)>>8), byte(len(body)))
		transcript = append(transcript, body...)
		switch typ {
		case hsServerHello:
			if sh, err = parseServerHello(body); err != nil {
				return "", err
			}
			if _, ems := sh.extensions[extExtendedMaster]; ems {
				return "", errors.New("server insists on extended master secret")
			}
		case hsServerKeyExchange:
			if kx, err = parseServerKeyExchange(body, SuiteInfo(suite), VersionTLS12); err != nil {
				return "", err
			}
			s := cryptobyte.String(body[3:])
			var pt cryptobyte.String
			if !s.ReadUint8LengthPrefixed(&pt) {
				return "", errMalformed
			}
			serverPoint = pt
		case hsCertificateReq:
			certRequested = true
		case hsServerHelloDone:
			done = true
		}
	}
	if sh == nil || sh.suite != suite || kx == nil {
		return "", errors.New("unexpected first handshake")
	}
	var curve ecdh.Curve
	switch kx.group {
	case 0x001d:
		curve = ecdh.X25519()
	case 0x0017:
		curve = ecdh.P256()
	case 0x0018:
		curve = ecdh.P384()
	default:
		return "", fmt.Errorf("group %s not supported by the probe", GroupName(kx.group))
	}
	priv, err := curve.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	peer, err := curve.NewPublicKey(serverPoint)
	if err != nil {
		return "", fmt.Errorf("server key share: %w", err)
	}
	pms, err := priv.ECDH(peer)
	if err != nil {
		return "", err
	}
	var out []byte
	msg := func(typ uint8, body []byte) []byte {
		b := cryptobyte.NewBuilder(nil)
		b.AddUint8(typ)
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(body) })
		m := b.BytesOrPanic()
		transcript = append(transcript, m...)
		return m
	}
	var signer crypto.Signer
	if certRequested {
		cm := cryptobyte.NewBuilder(nil)
		cm.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
			if cert == nil {
				return
			}
			for _, d := range cert.Certificate {
				b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(d) })
			}
		})
		out = append(out, records(recordHandshake, VersionTLS12, msg(hsCertificate, cm.BytesOrPanic()))...)
		if cert != nil {
			signer, _ = cert.PrivateKey.(crypto.Signer)
		}
	}
	pub := priv.PublicKey().Bytes()
	out = append(out, records(recordHandshake, VersionTLS12, msg(16, append([]byte{byte(len(pub))}, pub...)))...)
	if signer != nil {
		// CertificateVerify: the transcript so far, signed by the client key.
		cv, err := certificateVerify(signer, transcript)
		if err != nil {
			return "", err
		}
		out = append(out, records(recordHandshake, VersionTLS12, msg(15, cv))...)
	}
	out = append(out, records(recordCCS, VersionTLS12, []byte{1})...)

	master := prf12(params.hash, pms, "master secret", append(slices.Clone(ch.random), sh.random...), 48)
	kb := prf12(params.hash, master, "key expansion", append(slices.Clone(sh.random), ch.random...), 2*params.keyLen+8)
	key, iv := kb[:params.keyLen], kb[2*params.keyLen:2*params.keyLen+4]
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return "", err
	}
	hh := params.hash.New()
	hh.Write(transcript)
	verify := prf12(params.hash, master, "client finished", hh.Sum(nil), 12)
	var seq uint64
	seal := func(typ uint8, plain []byte) []byte {
		nonce := make([]byte, 12)
		copy(nonce, iv)
		binary.BigEndian.PutUint64(nonce[4:], seq)
		ad := binary.BigEndian.AppendUint64(nil, seq)
		ad = append(ad, typ, 3, 3, byte(len(plain)>>8), byte(len(plain)))
		payload := aead.Seal(slices.Clone(nonce[4:]), nonce, plain, ad)
		seq++
		return records(typ, VersionTLS12, payload)
	}
	fin := cryptobyte.NewBuilder(nil)
	fin.AddUint8(20)
	fin.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(verify) })
	out = append(out, seal(recordHandshake, fin.BytesOrPanic())...)
	if _, err := c.Write(out); err != nil {
		return "", fmt.Errorf("renegotiation probe: %w", err)
	}
	// The server's CCS and Finished (and maybe a ticket before them).
	for sawCCS := false; ; {
		typ, _, err := c.readRecord()
		if err != nil {
			return "", fmt.Errorf("renegotiation probe: the server did not finish the first handshake: %w", err)
		}
		if typ == recordAlert {
			if certRequested && cert == nil {
				return "", errors.New("the server requires a client certificate (give one)")
			}
			return "", errors.New("the server refused the probe's first handshake")
		}
		if typ == recordCCS {
			sawCCS = true
			continue
		}
		if sawCCS && typ == recordHandshake {
			break
		}
	}
	re := &clientHello{version: VersionTLS12, suites: []uint16{suite}, serverName: p.sni, groups: groups,
		sigAlgs: sigAlgOrder, renegInfo: true, renegData: verify, noEMS: true}
	if _, err := re.marshal(); err != nil {
		return "", err
	}
	if _, err := c.Write(seal(recordHandshake, re.message)); err != nil {
		return "refused", nil
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	typ, _, err := c.readRecord()
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "refused", nil // ignored: no renegotiation happened
	case err != nil:
		return "refused", nil // closed
	case typ == recordHandshake:
		return "accepted", nil
	}
	return "refused", nil // an alert (no_renegotiation or fatal)
}

// certificateVerify signs transcript for a TLS 1.2 CertificateVerify with
// ECDSA-SHA256, RSA-PSS-SHA256 or Ed25519.
func certificateVerify(k crypto.Signer, transcript []byte) ([]byte, error) {
	var scheme uint16
	var digest []byte
	var opts crypto.SignerOpts
	sum := sha256.Sum256(transcript)
	switch k.Public().(type) {
	case *ecdsa.PublicKey:
		scheme, digest, opts = 0x0403, sum[:], crypto.SHA256
	case *rsa.PublicKey:
		scheme, digest, opts = 0x0804, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	case ed25519.PublicKey:
		scheme, digest, opts = 0x0807, transcript, crypto.Hash(0)
	default:
		return nil, errors.New("client key type not supported by the renegotiation probe")
	}
	sig, err := k.Sign(rand.Reader, digest, opts)
	if err != nil {
		return nil, fmt.Errorf("sign CertificateVerify: %w", err)
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddUint16(scheme)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(sig) })
	return b.BytesOrPanic(), nil
}
