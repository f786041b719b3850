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
	"crypto/sha1"
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

// session12Suites are the suites the probe's own TLS 1.2 handshake can
// run: PRF hash, key length and whether the record protection is CBC
// (HMAC-SHA1 then AES-CBC, explicit IV) rather than AES-GCM.
var session12Suites = map[uint16]struct {
	hash   crypto.Hash
	keyLen int
	cbc    bool
}{
	0xC02F: {crypto.SHA256, 16, false}, 0xC02B: {crypto.SHA256, 16, false},
	0xC030: {crypto.SHA384, 32, false}, 0xC02C: {crypto.SHA384, 32, false},
	0xC013: {crypto.SHA256, 16, true}, 0xC009: {crypto.SHA256, 16, true},
	0xC014: {crypto.SHA256, 32, true}, 0xC00A: {crypto.SHA256, 32, true},
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
			if p, ok := session12Suites[s.ID]; ok && !p.cbc && suite == 0 {
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

// session12 is a TLS 1.2 connection whose handshake the probe completed.
type session12 struct {
	c       *conn
	release func()
	verify  []byte // client verify_data
	seal    func(typ uint8, plain []byte, badPadding bool) []byte
	// sessionID is the ID the server gave the session (empty if none).
	sessionID []byte
}

func (s *session12) Close() {
	s.c.Close()
	s.release()
}

func (p *prober) renegotiate(ctx context.Context, suite uint16, cert *tls.Certificate) (string, error) {
	s, err := p.handshake12(ctx, suite, cert)
	if err != nil {
		return "", err
	}
	defer s.Close()
	re := &clientHello{version: VersionTLS12, suites: []uint16{suite}, serverName: p.sni, groups: probeGroups,
		sigAlgs: sigAlgOrder, renegInfo: true, renegData: s.verify, noEMS: true}
	if _, err := re.marshal(); err != nil {
		return "", err
	}
	if _, err := s.c.Write(s.seal(recordHandshake, re.message, false)); err != nil {
		return "refused", nil
	}
	s.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	typ, _, err := s.c.readRecord()
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

var probeGroups = []uint16{0x001d, 0x0017, 0x0018}

// handshake12 completes a TLS 1.2 ECDHE handshake with suite, presenting
// cert if the server asks for one. The server's Finished is read but not
// checked: the probes only need the server to take the keys.
func (p *prober) handshake12(ctx context.Context, suite uint16, cert *tls.Certificate) (_ *session12, err error) {
	params := session12Suites[suite]
	groups := probeGroups
	ch := &clientHello{version: VersionTLS12, suites: []uint16{suite}, serverName: p.sni, groups: groups,
		sigAlgs: sigAlgOrder, renegInfo: true, noEMS: true}
	hello, err := ch.marshal()
	if err != nil {
		return nil, err
	}
	c, release, err := p.dialRaw(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.Close()
			release()
		}
	}()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := c.Write(hello); err != nil {
		return nil, fmt.Errorf("TLS 1.2 probe: %w", err)
	}
	transcript := slices.Clone(ch.message)
	var sh *serverHello
	var kx *keyExchange
	var serverPoint []byte
	certRequested := false
	for done := false; !done; {
		typ, body, err := c.readHandshake()
		if err != nil {
			return nil, fmt.Errorf("TLS 1.2 probe: handshake: %w", err)
		}
		transcript = append(transcript, typ, byte(len(body)>>16), byte(len(body)>>8), byte(len(body)))
		transcript = append(transcript, body...)
		switch typ {
		case hsServerHello:
			if sh, err = parseServerHello(body); err != nil {
				return nil, err
			}
			if _, ems := sh.extensions[extExtendedMaster]; ems {
				return nil, errors.New("server insists on extended master secret")
			}
		case hsServerKeyExchange:
			if kx, err = parseServerKeyExchange(body, SuiteInfo(suite), VersionTLS12); err != nil {
				return nil, err
			}
			s := cryptobyte.String(body[3:])
			var pt cryptobyte.String
			if !s.ReadUint8LengthPrefixed(&pt) {
				return nil, errMalformed
			}
			serverPoint = pt
		case hsCertificateReq:
			certRequested = true
		case hsServerHelloDone:
			done = true
		}
	}
	if sh == nil || sh.suite != suite || kx == nil {
		return nil, errors.New("unexpected first handshake")
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
		return nil, fmt.Errorf("group %s not supported by the probe", GroupName(kx.group))
	}
	priv, err := curve.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	peer, err := curve.NewPublicKey(serverPoint)
	if err != nil {
		return nil, fmt.Errorf("server key share: %w", err)
	}
	pms, err := priv.ECDH(peer)
	if err != nil {
		return nil, err
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
			return nil, err
		}
		out = append(out, records(recordHandshake, VersionTLS12, msg(15, cv))...)
	}
	out = append(out, records(recordCCS, VersionTLS12, []byte{1})...)

	master := prf12(params.hash, pms, "master secret", append(slices.Clone(ch.random), sh.random...), 48)
	seal, err := recordSealer(params.hash, params.keyLen, params.cbc, master, ch.random, sh.random)
	if err != nil {
		return nil, err
	}
	hh := params.hash.New()
	hh.Write(transcript)
	verify := prf12(params.hash, master, "client finished", hh.Sum(nil), 12)
	fin := cryptobyte.NewBuilder(nil)
	fin.AddUint8(20)
	fin.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(verify) })
	out = append(out, seal(recordHandshake, fin.BytesOrPanic(), false)...)
	if _, err := c.Write(out); err != nil {
		return nil, fmt.Errorf("TLS 1.2 probe: %w", err)
	}
	// The server's CCS and Finished (and maybe a ticket before them).
	for sawCCS := false; ; {
		typ, _, err := c.readRecord()
		if err != nil {
			return nil, fmt.Errorf("TLS 1.2 probe: the server did not finish the handshake: %w", err)
		}
		if typ == recordAlert {
			if certRequested && cert == nil {
				return nil, errors.New("the server requires a client certificate (give one)")
			}
			return nil, errors.New("the server refused the probe's handshake")
		}
		if typ == recordCCS {
			sawCCS = true
			continue
		}
		if sawCCS && typ == recordHandshake {
			break
		}
	}
	return &session12{c: c, release: release, verify: verify, seal: seal, sessionID: sh.sessionID}, nil
}

// recordSealer returns the client's record protection for a TLS 1.2
// session: AES-GCM, or HMAC-SHA1 then AES-CBC with an explicit IV. With
// badPadding the CBC padding bytes are wrong (all but the length byte),
// which only a server that does not check them accepts (POODLE TLS).
func recordSealer(h crypto.Hash, keyLen int, cbc bool, master, clientRandom, serverRandom []byte) (func(uint8, []byte, bool) []byte, error) {
	macLen, ivLen := 0, 4
	if cbc {
		macLen, ivLen = 20, 0
	}
	kb := prf12(h, master, "key expansion", append(slices.Clone(serverRandom), clientRandom...), 2*macLen+2*keyLen+2*ivLen)
	macKey := kb[:macLen]
	key := kb[2*macLen : 2*macLen+keyLen]
	iv := kb[2*macLen+2*keyLen : 2*macLen+2*keyLen+ivLen]
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	var seq uint64
	header := func(typ uint8, n int) []byte {
		ad := binary.BigEndian.AppendUint64(nil, seq)
		return append(ad, typ, 3, 3, byte(n>>8), byte(n))
	}
	if !cbc {
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		return func(typ uint8, plain []byte, _ bool) []byte {
			nonce := make([]byte, 12)
			copy(nonce, iv)
			binary.BigEndian.PutUint64(nonce[4:], seq)
			payload := aead.Seal(slices.Clone(nonce[4:]), nonce, plain, header(typ, len(plain)))
			seq++
			return records(typ, VersionTLS12, payload)
		}, nil
	}
	return func(typ uint8, plain []byte, badPadding bool) []byte {
		mac := hmac.New(sha1.New, macKey)
		mac.Write(header(typ, len(plain)))
		mac.Write(plain)
		data := mac.Sum(slices.Clone(plain))
		pad := aes.BlockSize - (len(data)+1)%aes.BlockSize
		if pad == 0 && badPadding {
			pad = aes.BlockSize // at least one padding byte to get wrong
		}
		for i := 0; i <= pad; i++ {
			b := byte(pad)
			if badPadding && i < pad {
				b = byte(pad) ^ 0x5a
			}
			data = append(data, b)
		}
		explicitIV := make([]byte, aes.BlockSize)
		rand.Read(explicitIV)
		out := make([]byte, len(data))
		cipher.NewCBCEncrypter(block, explicitIV).CryptBlocks(out, data)
		seq++
		return records(typ, VersionTLS12, append(explicitIV, out...))
	}, nil
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

// sessionIDResumption completes a TLS 1.2 handshake, then offers its
// session ID (without a ticket) on a new connection: the server resumes
// when it echoes the ID.
func (p *prober) sessionIDResumption(ctx context.Context, r *Report, cert *tls.Certificate) (bool, error) {
	var suite uint16
	for _, pr := range r.Protocols {
		if pr.Version == VersionTLS12 && pr.Offered {
			for _, s := range pr.Suites {
				if _, ok := session12Suites[s.ID]; ok && suite == 0 {
					suite = s.ID
				}
			}
		}
	}
	if suite == 0 {
		return false, errors.New("session ID resumption: needs TLS 1.2 with an ECDHE AES suite")
	}
	s, err := p.handshake12(ctx, suite, cert)
	if err != nil {
		return false, fmt.Errorf("session ID resumption: %w", err)
	}
	id := s.sessionID
	s.Close()
	if len(id) == 0 {
		return false, nil
	}
	ch := &clientHello{version: VersionTLS12, suites: []uint16{suite}, serverName: p.sni, groups: probeGroups,
		sigAlgs: sigAlgOrder, renegInfo: true, noEMS: true, sessionID: id}
	res, err := p.hello(ctx, ch, false, false)
	if err != nil {
		return false, fmt.Errorf("session ID resumption: %w", err)
	}
	return res.accepted() && string(res.hello.sessionID) == string(id), nil
}
