package scan

import (
	"bytes"
	"net"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

// readerConn is a net.Conn that reads from a buffer (other methods are
// not used by the parsers).
type readerConn struct {
	net.Conn
	r *bytes.Reader
}

func (c *readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// FuzzServerHello feeds arbitrary server bytes to everything the prober
// parses before the certificate: records, handshake reassembly,
// ServerHello, ServerKeyExchange and the SSLv2 SERVER-HELLO.
func FuzzServerHello(f *testing.F) {
	ch := &clientHello{version: VersionTLS12, suites: []uint16{0xC02F}, serverName: "a.test", groups: groupOrder}
	hello, _ := ch.marshal()
	f.Add(hello)
	// A ServerHello with supported_versions, key_share and ALPN.
	f.Add([]byte{22, 3, 3, 0, 0x3a, 2, 0, 0, 0x36, 3, 3,
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
		0, 0x13, 0x01, 0, 0, 0x0e, 0, 43, 0, 2, 3, 4, 0, 51, 0, 4, 0, 0x1d, 0, 0})
	f.Add([]byte{21, 3, 3, 0, 2, 2, 40})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &conn{Conn: &readerConn{r: bytes.NewReader(data)}}
		for range 8 {
			typ, body, err := c.readHandshake()
			if err != nil {
				break
			}
			switch typ {
			case hsServerHello:
				if h, err := parseServerHello(body); err == nil && h.suite == 0 && h.selectedVersion == 0 && len(h.random) != 32 {
					t.Fatalf("parsed hello without a 32-byte random")
				}
			case hsServerKeyExchange:
				parseServerKeyExchange(body, SuiteInfo(0xC02F), VersionTLS12)
				parseServerKeyExchange(body, SuiteInfo(0x009E), VersionTLS12)
			case hsCertificate:
				if ders, err := parseCertificateMsg(body); err == nil {
					parseChain(ders)
				}
			}
		}
		parseSSLv2ServerHello(data)
		parseHSTS(string(data))
		rdnString(data)
	})
}

// FuzzCertificateMsg feeds arbitrary Certificate message bodies to the
// chain parser and the certificate description the report is built from.
func FuzzCertificateMsg(f *testing.F) {
	root := testpki.NewRoot(f, "Fuzz Root")
	leaf := root.Server(f, "fuzz.test")
	body := func(ders ...[]byte) []byte {
		var list []byte
		for _, d := range ders {
			list = append(list, byte(len(d)>>16), byte(len(d)>>8), byte(len(d)))
			list = append(list, d...)
		}
		return append([]byte{byte(len(list) >> 16), byte(len(list) >> 8), byte(len(list))}, list...)
	}
	f.Add(body(leaf.Cert.Raw, root.Cert.Raw))
	f.Add(body(leaf.Cert.Raw))
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		ders, err := parseCertificateMsg(data)
		if err != nil {
			return
		}
		chain, err := parseChain(ders)
		if err != nil {
			return
		}
		for _, c := range chain {
			ci := certInfo(c)
			if ci.SHA256 == "" {
				t.Fatal("no fingerprint")
			}
		}
	})
}

func TestClientHelloRoundTrip(t *testing.T) {
	ch := &clientHello{version: VersionTLS12, suites: suitesFor(VersionTLS12), serverName: "a.test", groups: groupOrder,
		sigAlgs: sigAlgOrder, versions: []uint16{VersionTLS13}, keyShareX25519: true, renegInfo: true, heartbeat: true,
		statusRequest: true, alpn: []string{"h2"}}
	rec, err := ch.marshal()
	if err != nil {
		t.Fatal(err)
	}
	if rec[0] != recordHandshake || rec[1] != 3 || rec[2] != 1 {
		t.Fatalf("record header % x", rec[:5])
	}
	c := &conn{Conn: &readerConn{r: bytes.NewReader(rec)}}
	typ, body, err := c.readHandshake()
	if err != nil || typ != 1 {
		t.Fatalf("read back: %d %v", typ, err)
	}
	if !bytes.Equal(append([]byte{1, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...), ch.message) {
		t.Fatal("message differs from what was sent")
	}
	// More suites than fit one record still frame correctly.
	big := &clientHello{version: VersionTLS12, suites: make([]uint16, 9000)}
	rec, err = big.marshal()
	if err != nil {
		t.Fatal(err)
	}
	c = &conn{Conn: &readerConn{r: bytes.NewReader(rec)}}
	if _, body, err := c.readHandshake(); err != nil || len(body) < 18000 {
		t.Fatalf("multi-record hello: %v %d", err, len(body))
	}
}
