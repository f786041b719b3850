package scan

import (
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// Protocol versions as they appear on the wire.
const (
	VersionSSL2  uint16 = 0x0002
	VersionSSL3  uint16 = 0x0300
	VersionTLS10 uint16 = 0x0301
	VersionTLS11 uint16 = 0x0302
	VersionTLS12 uint16 = 0x0303
	VersionTLS13 uint16 = 0x0304
)

// VersionName is the usual name of a protocol version.
func VersionName(v uint16) string {
	switch v {
	case VersionSSL2:
		return "SSLv2"
	case VersionSSL3:
		return "SSLv3"
	case VersionTLS10:
		return "TLS 1.0"
	case VersionTLS11:
		return "TLS 1.1"
	case VersionTLS12:
		return "TLS 1.2"
	case VersionTLS13:
		return "TLS 1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

// Record content types, handshake message types and extensions used.
const (
	recordCCS       = 20
	recordAlert     = 21
	recordHandshake = 22
	recordHeartbeat = 24

	hsServerHello       = 2
	hsCertificate       = 11
	hsServerKeyExchange = 12
	hsCertificateReq    = 13
	hsServerHelloDone   = 14
	hsCertificateStatus = 22

	extServerName        = 0
	extStatusRequest     = 5
	extSupportedGroups   = 10
	extPointFormats      = 11
	extSignatureAlgs     = 13
	extSignatureAlgsCert = 50
	extHeartbeat         = 15
	extALPN              = 16
	extExtendedMaster    = 23
	extSessionTicket     = 35
	extSupportedVersions = 43
	extKeyShare          = 51
	extRenegotiationInfo = 0xff01

	suiteRenegotiationSCSV = 0x00ff
	suiteFallbackSCSV      = 0x5600

	alertInappropriateFallback = 86
)

// Named groups the prober knows.
var groupNames = map[uint16]string{
	0x0017: "secp256r1", 0x0018: "secp384r1", 0x0019: "secp521r1",
	0x001d: "x25519", 0x001e: "x448",
	0x0100: "ffdhe2048", 0x0101: "ffdhe3072", 0x0102: "ffdhe4096", 0x0103: "ffdhe6144", 0x0104: "ffdhe8192",
	0x11eb: "SecP256r1MLKEM768", 0x11ec: "X25519MLKEM768", 0x11ed: "SecP384r1MLKEM1024",
	0x6399: "X25519Kyber768Draft00",
	0x0015: "secp224r1", 0x0016: "secp256k1", 0x001a: "brainpoolP256r1", 0x001b: "brainpoolP384r1", 0x001c: "brainpoolP512r1",
	0x0013: "secp192r1",
}

// groupOrder is the order groups are offered in.
var groupOrder = []uint16{0x11ec, 0x11eb, 0x11ed, 0x6399, 0x001d, 0x0017, 0x0018, 0x0019, 0x001e,
	0x0100, 0x0101, 0x0102, 0x0103, 0x0104, 0x001a, 0x001b, 0x001c, 0x0016, 0x0015, 0x0013}

// groupBits is the RSA-equivalent strength of a group, for grading.
var groupBits = map[uint16]int{
	0x0017: 3072, 0x0018: 7680, 0x0019: 15360, 0x001d: 3072, 0x001e: 7680,
	0x0100: 2048, 0x0101: 3072, 0x0102: 4096, 0x0103: 6144, 0x0104: 8192,
	0x11eb: 3072, 0x11ec: 3072, 0x11ed: 7680, 0x6399: 3072,
	0x0015: 2048, 0x0016: 3072, 0x001a: 3072, 0x001b: 7680, 0x001c: 15360, 0x0013: 1536,
}

// GroupName names a group.
func GroupName(g uint16) string {
	if n, ok := groupNames[g]; ok {
		return n
	}
	return fmt.Sprintf("0x%04x", g)
}

// Signature schemes offered in TLS 1.2 ClientHellos.
var sigAlgNames = map[uint16]string{
	0x0403: "ecdsa_secp256r1_sha256", 0x0503: "ecdsa_secp384r1_sha384", 0x0603: "ecdsa_secp521r1_sha512",
	0x0807: "ed25519", 0x0808: "ed448",
	0x0804: "rsa_pss_rsae_sha256", 0x0805: "rsa_pss_rsae_sha384", 0x0806: "rsa_pss_rsae_sha512",
	0x0809: "rsa_pss_pss_sha256", 0x080a: "rsa_pss_pss_sha384", 0x080b: "rsa_pss_pss_sha512",
	0x0401: "rsa_pkcs1_sha256", 0x0501: "rsa_pkcs1_sha384", 0x0601: "rsa_pkcs1_sha512",
	0x0303: "ecdsa_sha224", 0x0301: "rsa_pkcs1_sha224", 0x0302: "dsa_sha224",
	0x0203: "ecdsa_sha1", 0x0201: "rsa_pkcs1_sha1", 0x0202: "dsa_sha1",
	0x0402: "dsa_sha256", 0x0502: "dsa_sha384", 0x0602: "dsa_sha512",
}

var sigAlgOrder = []uint16{0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0809, 0x080a, 0x080b,
	0x0401, 0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0402, 0x0502, 0x0602, 0x0203, 0x0201, 0x0202}

// SigAlgName names a signature scheme.
func SigAlgName(s uint16) string {
	if n, ok := sigAlgNames[s]; ok {
		return n
	}
	return fmt.Sprintf("0x%04x", s)
}

// clientHello describes one raw ClientHello.
type clientHello struct {
	recordVersion  uint16 // record layer version; 0 means min(version, TLS 1.0)
	version        uint16 // legacy_version
	suites         []uint16
	serverName     string
	compression    []byte // nil means [null]
	groups         []uint16
	sigAlgs        []uint16
	sigAlgsCert    []uint16 // signature_algorithms_cert; nil to omit
	versions       []uint16 // supported_versions; nil to omit
	keyShareX25519 bool     // send an X25519 key share (else an empty key_share with versions)
	renegInfo      bool
	renegData      []byte // renegotiated_connection (client verify_data) when renegotiating
	noEMS          bool   // omit extended_master_secret
	sessionID      []byte // legacy_session_id; nil: 32 random bytes with versions, else empty
	ticket         []byte // session_ticket extension data (with sessionTicket)
	random         []byte // set by marshal: the client random sent
	message        []byte // set by marshal: the handshake message (type, length, body)
	heartbeat      bool
	statusRequest  bool
	sessionTicket  bool
	alpn           []string
	noExtensions   bool // SSLv3 style
}

// marshal returns the ClientHello as one or more TLS records.
func (h *clientHello) marshal() ([]byte, error) {
	var random [32]byte
	rand.Read(random[:])
	h.random = random[:]
	var sid [32]byte
	rand.Read(sid[:])
	hs := cryptobyte.NewBuilder(nil)
	hs.AddUint8(1) // client_hello
	hs.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16(h.version)
		b.AddBytes(random[:])
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {
			switch {
			case h.sessionID != nil:
				b.AddBytes(h.sessionID)
			case h.versions != nil:
				b.AddBytes(sid[:]) // middlebox compatibility, as browsers do
			}
		})
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, s := range h.suites {
				b.AddUint16(s)
			}
		})
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {
			if h.compression == nil {
				b.AddUint8(0)
			}
			b.AddBytes(h.compression)
		})
		if h.noExtensions {
			return
		}
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { h.addExtensions(b) })
	})
	body, err := hs.Bytes()
	if err != nil {
		return nil, fmt.Errorf("build client hello: %w", err)
	}
	h.message = body
	rv := h.recordVersion
	if rv == 0 {
		rv = min(h.version, VersionTLS10)
	}
	return records(recordHandshake, rv, body), nil
}

func (h *clientHello) addExtensions(b *cryptobyte.Builder) {
	ext := func(typ uint16, f func(b *cryptobyte.Builder)) {
		b.AddUint16(typ)
		b.AddUint16LengthPrefixed(f)
	}
	if h.serverName != "" && net.ParseIP(h.serverName) == nil {
		ext(extServerName, func(b *cryptobyte.Builder) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				b.AddUint8(0) // host_name
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(h.serverName)) })
			})
		})
	}
	if h.renegInfo {
		ext(extRenegotiationInfo, func(b *cryptobyte.Builder) {
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(h.renegData) })
		})
	}
	if len(h.groups) > 0 {
		ext(extSupportedGroups, func(b *cryptobyte.Builder) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				for _, g := range h.groups {
					b.AddUint16(g)
				}
			})
		})
		ext(extPointFormats, func(b *cryptobyte.Builder) {
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(0) })
		})
	}
	if len(h.sigAlgs) > 0 {
		ext(extSignatureAlgs, func(b *cryptobyte.Builder) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				for _, s := range h.sigAlgs {
					b.AddUint16(s)
				}
			})
		})
	}
	if len(h.sigAlgsCert) > 0 {
		ext(extSignatureAlgsCert, func(b *cryptobyte.Builder) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				for _, s := range h.sigAlgsCert {
					b.AddUint16(s)
				}
			})
		})
	}
	if h.statusRequest {
		ext(extStatusRequest, func(b *cryptobyte.Builder) {
			b.AddUint8(1) // ocsp
			b.AddUint16(0)
			b.AddUint16(0)
		})
	}
	if h.sessionTicket {
		ext(extSessionTicket, func(b *cryptobyte.Builder) { b.AddBytes(h.ticket) })
	}
	if h.heartbeat {
		ext(extHeartbeat, func(b *cryptobyte.Builder) { b.AddUint8(1) }) // peer_allowed_to_send
	}
	if len(h.alpn) > 0 {
		ext(extALPN, func(b *cryptobyte.Builder) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				for _, p := range h.alpn {
					b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(p)) })
				}
			})
		})
	}
	if !h.noEMS {
		ext(extExtendedMaster, func(b *cryptobyte.Builder) {})
	}
	if h.versions != nil {
		ext(extSupportedVersions, func(b *cryptobyte.Builder) {
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {
				for _, v := range h.versions {
					b.AddUint16(v)
				}
			})
		})
		ext(extKeyShare, func(b *cryptobyte.Builder) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				if h.keyShareX25519 {
					k, err := ecdh.X25519().GenerateKey(rand.Reader)
					if err != nil {
						b.SetError(err)
						return
					}
					b.AddUint16(0x001d)
					b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(k.PublicKey().Bytes()) })
				}
			})
		})
	}
}

// records splits payload into TLS records of the given type.
func records(typ uint8, version uint16, payload []byte) []byte {
	var out []byte
	for len(payload) > 0 || out == nil {
		n := min(len(payload), 1<<14)
		b := cryptobyte.NewBuilder(out)
		b.AddUint8(typ)
		b.AddUint16(version)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(payload[:n]) })
		out = b.BytesOrPanic()
		payload = payload[n:]
	}
	return out
}

// serverHello is a parsed ServerHello (or HelloRetryRequest).
type serverHello struct {
	version     uint16 // legacy_version
	random      []byte
	sessionID   []byte
	suite       uint16
	compression uint8
	extensions  map[uint16][]byte
	// derived
	selectedVersion uint16 // supported_versions, else version
	hrr             bool
	keyShareGroup   uint16
	alpn            string
}

// helloRetryRandom marks a ServerHello as a HelloRetryRequest (RFC 8446 4.1.3).
var helloRetryRandom = []byte{
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
}

var errMalformed = errors.New("malformed message")

// parseServerHello parses a ServerHello body (after type and length).
func parseServerHello(body []byte) (*serverHello, error) {
	s := cryptobyte.String(body)
	h := &serverHello{extensions: map[uint16][]byte{}}
	var random, sid cryptobyte.String
	if !s.ReadUint16(&h.version) || !s.ReadBytes((*[]byte)(&random), 32) ||
		!s.ReadUint8LengthPrefixed(&sid) || !s.ReadUint16(&h.suite) || !s.ReadUint8(&h.compression) {
		return nil, fmt.Errorf("parse server hello: %w", errMalformed)
	}
	h.random, h.sessionID = random, sid
	h.selectedVersion = h.version
	if !s.Empty() {
		var exts cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
			return nil, fmt.Errorf("parse server hello extensions: %w", errMalformed)
		}
		for !exts.Empty() {
			var typ uint16
			var data cryptobyte.String
			if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
				return nil, fmt.Errorf("parse server hello extension: %w", errMalformed)
			}
			if _, dup := h.extensions[typ]; dup {
				return nil, fmt.Errorf("parse server hello: duplicate extension %d: %w", typ, errMalformed)
			}
			h.extensions[typ] = data
		}
	}
	h.hrr = string(h.random) == string(helloRetryRandom)
	if d, ok := h.extensions[extSupportedVersions]; ok {
		ds := cryptobyte.String(d)
		if !ds.ReadUint16(&h.selectedVersion) || !ds.Empty() {
			return nil, fmt.Errorf("parse supported_versions: %w", errMalformed)
		}
	}
	if d, ok := h.extensions[extKeyShare]; ok {
		ds := cryptobyte.String(d)
		if !ds.ReadUint16(&h.keyShareGroup) {
			return nil, fmt.Errorf("parse key_share: %w", errMalformed)
		}
	}
	if d, ok := h.extensions[extALPN]; ok {
		ds := cryptobyte.String(d)
		var list, proto cryptobyte.String
		if !ds.ReadUint16LengthPrefixed(&list) || !list.ReadUint8LengthPrefixed(&proto) {
			return nil, fmt.Errorf("parse alpn: %w", errMalformed)
		}
		h.alpn = string(proto)
	}
	return h, nil
}

// parseCertificateMsg parses a TLS 1.0-1.2 Certificate message body into
// DER certificates.
func parseCertificateMsg(body []byte) ([][]byte, error) {
	s := cryptobyte.String(body)
	var list cryptobyte.String
	if !s.ReadUint24LengthPrefixed(&list) || !s.Empty() {
		return nil, fmt.Errorf("parse certificate message: %w", errMalformed)
	}
	var certs [][]byte
	for !list.Empty() {
		var c cryptobyte.String
		if !list.ReadUint24LengthPrefixed(&c) || len(c) == 0 {
			return nil, fmt.Errorf("parse certificate entry: %w", errMalformed)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// keyExchange is what a ServerKeyExchange says about the key exchange.
type keyExchange struct {
	group  uint16 // ECDHE named curve
	dhBits int    // DHE prime size
	dhP    []byte // DHE prime, big-endian
	sigAlg uint16 // TLS 1.2 signature scheme
}

// parseServerKeyExchange parses the parameters of an ECDHE or DHE
// ServerKeyExchange (the signature is not checked: the prober only learns
// what the server chose).
func parseServerKeyExchange(body []byte, suite Suite, version uint16) (*keyExchange, error) {
	s := cryptobyte.String(body)
	kx := &keyExchange{}
	switch suite.Kx {
	case "ECDHE", "ECDH":
		var curveType uint8
		var point cryptobyte.String
		if !s.ReadUint8(&curveType) || curveType != 3 || !s.ReadUint16(&kx.group) || !s.ReadUint8LengthPrefixed(&point) {
			return nil, fmt.Errorf("parse ECDHE parameters: %w", errMalformed)
		}
	case "DHE", "DH":
		var p, g, y cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&p) || !s.ReadUint16LengthPrefixed(&g) || !s.ReadUint16LengthPrefixed(&y) {
			return nil, fmt.Errorf("parse DHE parameters: %w", errMalformed)
		}
		for len(p) > 0 && p[0] == 0 {
			p = p[1:]
		}
		kx.dhBits, kx.dhP = len(p)*8, append([]byte(nil), p...)
		if len(p) > 0 {
			for b := p[0]; b&0x80 == 0; b <<= 1 {
				kx.dhBits--
			}
		}
	default:
		return kx, nil
	}
	if version >= VersionTLS12 && !suite.Anon {
		if !s.ReadUint16(&kx.sigAlg) {
			return nil, fmt.Errorf("parse key exchange signature: %w", errMalformed)
		}
	}
	return kx, nil
}

// conn reads TLS records and handshake messages from a raw connection.
type conn struct {
	net.Conn
	hsBuf []byte // handshake bytes not yet returned
	// sawInternalError, if set, is called for each internal_error alert
	// read.
	sawInternalError func()
}

// alertError is an alert the server sent.
type alertError struct{ level, desc uint8 }

// alertInternalError is the internal_error alert's description.
const alertInternalError = 80

func (a *alertError) Error() string {
	return fmt.Sprintf("server sent alert %d (%s)", a.desc, alertName(a.desc))
}

func alertName(d uint8) string {
	switch d {
	case 0:
		return "close_notify"
	case 10:
		return "unexpected_message"
	case 20:
		return "bad_record_mac"
	case 21:
		return "decryption_failed"
	case 22:
		return "record_overflow"
	case 40:
		return "handshake_failure"
	case 42:
		return "bad_certificate"
	case 43:
		return "unsupported_certificate"
	case 44:
		return "certificate_revoked"
	case 45:
		return "certificate_expired"
	case 46:
		return "certificate_unknown"
	case 47:
		return "illegal_parameter"
	case 48:
		return "unknown_ca"
	case 49:
		return "access_denied"
	case 50:
		return "decode_error"
	case 51:
		return "decrypt_error"
	case 70:
		return "protocol_version"
	case 71:
		return "insufficient_security"
	case 80:
		return "internal_error"
	case 86:
		return "inappropriate_fallback"
	case 90:
		return "user_canceled"
	case 100:
		return "no_renegotiation"
	case 109:
		return "missing_extension"
	case 110:
		return "unsupported_extension"
	case 112:
		return "unrecognized_name"
	case 116:
		return "certificate_required"
	case 120:
		return "no_application_protocol"
	}
	return "unknown"
}

// maxRecord bounds a record the prober accepts.
const maxRecord = 1<<14 + 2048

// readRecord reads one record.
func (c *conn) readRecord() (typ uint8, payload []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(c.Conn, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(hdr[3])<<8 | int(hdr[4])
	if n > maxRecord || hdr[0] < 20 || hdr[0] > 24 {
		return 0, nil, fmt.Errorf("read record: not a TLS record (type %d, length %d)", hdr[0], n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.Conn, payload); err != nil {
		return 0, nil, err
	}
	if hdr[0] == recordAlert && len(payload) >= 2 && payload[1] == alertInternalError && c.sawInternalError != nil {
		c.sawInternalError()
	}
	return hdr[0], payload, nil
}

// readHandshake returns the next handshake message (type and body). An
// alert is returned as an *alertError.
func (c *conn) readHandshake() (uint8, []byte, error) {
	for {
		if len(c.hsBuf) >= 4 {
			n := int(c.hsBuf[1])<<16 | int(c.hsBuf[2])<<8 | int(c.hsBuf[3])
			if n > 1<<17 {
				return 0, nil, fmt.Errorf("read handshake: message of %d bytes: %w", n, errMalformed)
			}
			if len(c.hsBuf) >= 4+n {
				typ, body := c.hsBuf[0], c.hsBuf[4:4+n]
				c.hsBuf = c.hsBuf[4+n:]
				return typ, body, nil
			}
		}
		typ, payload, err := c.readRecord()
		if err != nil {
			return 0, nil, err
		}
		switch typ {
		case recordHandshake:
			c.hsBuf = append(c.hsBuf, payload...)
		case recordAlert:
			if len(payload) < 2 {
				return 0, nil, fmt.Errorf("read alert: %w", errMalformed)
			}
			return 0, nil, &alertError{payload[0], payload[1]}
		case recordCCS:
			// TLS 1.3 middlebox-compatibility CCS: skip.
		default:
			return 0, nil, fmt.Errorf("read handshake: unexpected record type %d", typ)
		}
	}
}

// deadline is the time one probe connection may take.
const probeTimeout = 5 * time.Second
