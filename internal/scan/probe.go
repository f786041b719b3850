package scan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// prober opens raw connections to one endpoint, at most cap(sem) at a
// time, each bounded by timeout.
type prober struct {
	addr    string
	sni     string
	timeout time.Duration
	sem     chan struct{}
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	// internalErrors counts the internal_error alerts the server sent
	// (read by every raw probe, and by the crypto/tls handshakes): it
	// failed, it did not refuse (a handshake rate limit answers so,
	// gatehouse's among them). Shared by the probers watched returns.
	internalErrors *atomic.Int32
	// probeErrors, on a prober from watched, counts them for one probe.
	probeErrors *atomic.Int32
}

// sawInternalError counts one internal_error alert.
func (p *prober) sawInternalError() {
	if p.internalErrors != nil {
		p.internalErrors.Add(1)
	}
	if p.probeErrors != nil {
		p.probeErrors.Add(1)
	}
}

// watched returns a prober like p (the same bounds and scan-wide count)
// that also counts the internal_error alerts of its own probes in n, so
// that a probe running beside others can tell whether its answers were
// failures (see judged).
func (p *prober) watched() (q *prober, n *atomic.Int32) {
	c := *p
	c.probeErrors = new(atomic.Int32)
	return &c, c.probeErrors
}

// judged is v, a probed verdict, seen with the n internal_error alerts
// the server sent during its probe: a "not vulnerable" reached while the
// server failed handshakes rather than answered them (a handshake rate
// limit) is not a verdict, so it becomes "not tested" and says why.
func judged(v Vuln, n int32) Vuln {
	if n > 0 && v.Status == NotVulnerable && v.Method == "probed" {
		v.Status = NotTested
		v.Detail = fmt.Sprintf("inconclusive: the server answered internal_error %d time(s) during the probe (it failed rather than answered; a handshake rate limit answers so); the probe saw: %s", n, v.Detail)
	}
	return v
}

// judgedListed is v, a verdict that rests on what the listing of
// protocols and suites found, seen with the n internal_error alerts the
// server sent during the listing: a "not vulnerable" that follows from
// something not being offered is not a verdict when the listing was
// answered by failures (a suite the server failed to negotiate may be
// offered), so it becomes "not tested".
func judgedListed(v Vuln, n int32) Vuln {
	if n > 0 && v.Status == NotVulnerable {
		v.Status = NotTested
		v.Detail = fmt.Sprintf("inconclusive: the server answered internal_error %d time(s) while its protocols and suites were listed, so it may offer more than the report shows; inferred from what was listed: %s", n, v.Detail)
	}
	return v
}

// helloResult is what the server answered to one ClientHello.
type helloResult struct {
	hello       *serverHello
	alert       *alertError // the server refused with an alert
	closed      bool        // the server closed or timed out without a ServerHello
	certs       [][]byte
	kx          *keyExchange
	certRequest bool
	staple      []byte
	done        bool  // ServerHelloDone was read (TLS 1.0-1.2)
	c           *conn // open when keep was set and a ServerHello arrived
}

// accepted reports whether the server answered with a ServerHello.
func (r *helloResult) accepted() bool { return r.hello != nil }

// dialRaw opens a connection under the prober's bounds. The returned
// release must be called when the connection is closed.
func (p *prober) dialRaw(ctx context.Context) (*conn, func(), error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	release := func() { <-p.sem }
	dctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	nc, err := p.dial(dctx, "tcp", p.addr)
	if err != nil {
		release()
		return nil, nil, fmt.Errorf("connect %s: %w", p.addr, err)
	}
	nc.SetDeadline(time.Now().Add(p.timeout))
	return &conn{Conn: nc, sawInternalError: p.sawInternalError}, release, nil
}

// hello sends ch and reads the answer: the ServerHello and, for TLS
// 1.0-1.2 when full is set, the messages up to ServerHelloDone. With keep
// the connection is left open in the result (the caller closes it).
func (p *prober) hello(ctx context.Context, ch *clientHello, full, keep bool) (*helloResult, error) {
	msg, err := ch.marshal()
	if err != nil {
		return nil, err
	}
	c, release, err := p.dialRaw(ctx)
	if err != nil {
		return nil, err
	}
	res := &helloResult{}
	defer func() {
		if res.c == nil {
			c.Close()
			release()
		}
	}()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := c.Write(msg); err != nil {
		res.closed = true
		return res, nil
	}
	typ, body, err := c.readHandshake()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return refusal(res, err)
	}
	if typ != hsServerHello {
		return nil, fmt.Errorf("probe %s: expected ServerHello, got handshake message %d", p.addr, typ)
	}
	if res.hello, err = parseServerHello(body); err != nil {
		return nil, fmt.Errorf("probe %s: %w", p.addr, err)
	}
	if full && res.hello.selectedVersion < VersionTLS13 && !res.hello.hrr {
		suite := SuiteInfo(res.hello.suite)
	loop:
		for {
			typ, body, err := c.readHandshake()
			if err != nil {
				return nil, fmt.Errorf("probe %s: read handshake after ServerHello: %w", p.addr, err)
			}
			switch typ {
			case hsCertificate:
				if res.certs, err = parseCertificateMsg(body); err != nil {
					return nil, fmt.Errorf("probe %s: %w", p.addr, err)
				}
			case hsCertificateStatus:
				s := cryptobyte.String(body)
				var st uint8
				var resp cryptobyte.String
				if s.ReadUint8(&st) && st == 1 && s.ReadUint24LengthPrefixed(&resp) {
					res.staple = resp
				}
			case hsServerKeyExchange:
				if res.kx, err = parseServerKeyExchange(body, suite, res.hello.selectedVersion); err != nil {
					return nil, fmt.Errorf("probe %s: %w", p.addr, err)
				}
			case hsCertificateReq:
				res.certRequest = true
			case hsServerHelloDone:
				res.done = true
				break loop
			}
		}
	}
	if keep {
		res.c = c
		c.Conn = &releaseConn{Conn: c.Conn, release: release}
	}
	return res, nil
}

// releaseConn releases the prober's slot when closed.
type releaseConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (r *releaseConn) Close() error {
	err := r.Conn.Close()
	r.once.Do(r.release)
	return err
}

// refusal turns a read error before the ServerHello into a refusal: an
// alert, a close, a reset or a timeout all mean "not offered".
func refusal(res *helloResult, err error) (*helloResult, error) {
	var a *alertError
	switch {
	case errors.As(err, &a):
		res.alert = a
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, net.ErrClosed), isReset(err), errors.Is(err, errMalformed):
		res.closed = true
	default:
		// Not a TLS answer at all (e.g. an HTTP server): not offered.
		res.closed = true
	}
	return res, nil
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}

// baseHello is a ClientHello for version v offering suites, with the
// extensions a modern client sends.
func (p *prober) baseHello(v uint16, suites []uint16) *clientHello {
	ch := &clientHello{version: v, suites: suites, serverName: p.sni, groups: groupOrder,
		renegInfo: true, sessionTicket: true}
	if v >= VersionTLS12 {
		ch.sigAlgs = sigAlgOrder
	}
	if v == VersionTLS13 {
		ch.version = VersionTLS12
		ch.versions = []uint16{VersionTLS13}
		ch.keyShareX25519 = true
	}
	if v == VersionSSL3 {
		ch.noExtensions = true
		ch.suites = append(slices.Clone(suites), suiteRenegotiationSCSV)
	}
	return ch
}

// versionAccepted reports whether r is a ServerHello for version v.
func versionAccepted(r *helloResult, v uint16) bool {
	return r.accepted() && r.hello.selectedVersion == v
}

// enumerateSuites finds the suites the server accepts with version v, in
// the order it chose them while the offer shrank.
func (p *prober) enumerateSuites(ctx context.Context, v uint16) ([]uint16, error) {
	remaining := suitesFor(v)
	var got []uint16
	for len(remaining) > 0 {
		r, err := p.hello(ctx, p.baseHello(v, remaining), false, false)
		if err != nil {
			return got, err
		}
		if !versionAccepted(r, v) {
			break
		}
		s := r.hello.suite
		i := slices.Index(remaining, s)
		if i < 0 { // the server chose a suite not offered
			return got, fmt.Errorf("probe %s %s: server chose suite %#04x that was not offered", p.addr, VersionName(v), s)
		}
		got = append(got, s)
		remaining = slices.Delete(remaining, i, i+1)
	}
	return got, nil
}

// serverOrder reports whether the server picks by its own preference:
// offered its first two choices in reverse, it still picks its first.
func (p *prober) serverOrder(ctx context.Context, v uint16, suites []uint16) (bool, error) {
	if len(suites) < 2 {
		return true, nil
	}
	r, err := p.hello(ctx, p.baseHello(v, []uint16{suites[1], suites[0]}), false, false)
	if err != nil {
		return false, err
	}
	return versionAccepted(r, v) && r.hello.suite == suites[0], nil
}

// groups13 finds the TLS 1.3 groups in the server's order: offered every
// remaining group with no key share, the server names its choice in a
// HelloRetryRequest.
func (p *prober) groups13(ctx context.Context) ([]uint16, error) {
	remaining := slices.Clone(groupOrder)
	var got []uint16
	for len(remaining) > 0 {
		ch := p.baseHello(VersionTLS13, suitesFor(VersionTLS13))
		ch.groups, ch.keyShareX25519 = remaining, false
		r, err := p.hello(ctx, ch, false, false)
		if err != nil {
			return got, err
		}
		if !versionAccepted(r, VersionTLS13) || r.hello.keyShareGroup == 0 {
			break
		}
		i := slices.Index(remaining, r.hello.keyShareGroup)
		if i < 0 {
			break
		}
		got = append(got, remaining[i])
		remaining = slices.Delete(remaining, i, i+1)
	}
	return got, nil
}

// groups12 finds the ECDHE groups accepted with TLS 1.0-1.2 version v,
// one group per probe.
func (p *prober) groups12(ctx context.Context, v uint16, suites []uint16) []uint16 {
	var ec []uint16
	for _, s := range suites {
		if SuiteInfo(s).Kx == "ECDHE" {
			ec = append(ec, s)
		}
	}
	if len(ec) == 0 {
		return nil
	}
	ok := make([]bool, len(groupOrder))
	var wg sync.WaitGroup
	for i, g := range groupOrder {
		if g >= 0x0100 && g <= 0x01ff || g > 0x1000 {
			continue // FFDHE and hybrids do not apply to ECDHE in TLS 1.2
		}
		wg.Go(func() {
			ch := p.baseHello(v, ec)
			ch.groups = []uint16{g}
			r, err := p.hello(ctx, ch, true, false)
			if err == nil && versionAccepted(r, v) && r.kx != nil && r.kx.group == g {
				ok[i] = true
			}
		})
	}
	wg.Wait()
	var got []uint16
	for i, g := range groupOrder {
		if ok[i] {
			got = append(got, g)
		}
	}
	return got
}

// sigAlgs12 finds the signature schemes the server signs its TLS 1.2 key
// exchange with, in its order.
func (p *prober) sigAlgs12(ctx context.Context, suites []uint16) []uint16 {
	var fs []uint16
	for _, s := range suites {
		if SuiteInfo(s).FS {
			fs = append(fs, s)
		}
	}
	if len(fs) == 0 {
		return nil
	}
	remaining := slices.Clone(sigAlgOrder)
	var got []uint16
	for len(remaining) > 0 {
		ch := p.baseHello(VersionTLS12, fs)
		ch.sigAlgs = remaining
		r, err := p.hello(ctx, ch, true, false)
		if err != nil || !versionAccepted(r, VersionTLS12) || r.kx == nil || r.kx.sigAlg == 0 {
			break
		}
		i := slices.Index(remaining, r.kx.sigAlg)
		if i < 0 {
			break
		}
		got = append(got, remaining[i])
		remaining = slices.Delete(remaining, i, i+1)
	}
	return got
}

// sslv2 reports whether the server answers an SSLv2 ClientHello with an
// SSLv2 ServerHello, and the SSLv2 cipher kinds it names.
func (p *prober) sslv2(ctx context.Context) (bool, int, error) {
	b := cryptobyte.NewBuilder(nil)
	var challenge [16]byte
	specs := []uint32{0x010080, 0x020080, 0x030080, 0x040080, 0x050080, 0x060040, 0x0700c0}
	b.AddUint8(1) // client-hello
	b.AddUint16(VersionSSL2)
	b.AddUint16(uint16(3 * len(specs)))
	b.AddUint16(0)
	b.AddUint16(uint16(len(challenge)))
	for _, s := range specs {
		b.AddUint24(s)
	}
	b.AddBytes(challenge[:])
	body := b.BytesOrPanic()
	msg := append([]byte{0x80 | byte(len(body)>>8), byte(len(body))}, body...)
	c, release, err := p.dialRaw(ctx)
	if err != nil {
		return false, 0, err
	}
	defer release()
	defer c.Close()
	if _, err := c.Write(msg); err != nil {
		return false, 0, nil
	}
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0]&0x80 == 0 {
		return false, 0, nil
	}
	n := int(hdr[0]&0x7f)<<8 | int(hdr[1])
	rest := make([]byte, n)
	if _, err := io.ReadFull(c, rest); err != nil {
		return false, 0, nil
	}
	ok, ciphers := parseSSLv2ServerHello(rest)
	return ok, ciphers, nil
}

// parseSSLv2ServerHello parses an SSLv2 SERVER-HELLO body and returns
// whether it is one and how many cipher kinds it lists.
func parseSSLv2ServerHello(b []byte) (bool, int) {
	s := cryptobyte.String(b)
	var typ, hit, certType uint8
	var version, certLen, specLen, idLen uint16
	if !s.ReadUint8(&typ) || typ != 4 || !s.ReadUint8(&hit) || !s.ReadUint8(&certType) ||
		!s.ReadUint16(&version) || !s.ReadUint16(&certLen) || !s.ReadUint16(&specLen) || !s.ReadUint16(&idLen) {
		return false, 0
	}
	if version != VersionSSL2 || specLen%3 != 0 || !s.Skip(int(certLen)) || !s.Skip(int(specLen)) {
		return false, 0
	}
	return true, int(specLen / 3)
}
