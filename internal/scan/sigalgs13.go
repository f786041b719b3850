package scan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// sigAlgGREASE is a reserved signature scheme (RFC 8701) no server can
// sign with: offered alone, it must be refused.
const sigAlgGREASE = 0x0a0a

// sigAlgGroups13 are the signature schemes a TLS 1.3 CertificateVerify
// may use (RFC 8446 4.2.3: no RSASSA-PKCS1-v1_5, SHA-1, SHA-224 or DSA),
// grouped by key type, the rare ones together.
var sigAlgGroups13 = [][]uint16{
	{0x0403, 0x0503, 0x0603},                 // ECDSA
	{0x0804, 0x0805, 0x0806},                 // RSA-PSS, rsaEncryption key
	{0x0807, 0x0808, 0x0809, 0x080a, 0x080b}, // EdDSA; RSA-PSS, RSASSA-PSS key
}

// sigAlgs13 finds the signature schemes the server signs its TLS 1.3
// CertificateVerify with. That message is encrypted and the scanner does
// not decrypt TLS 1.3, so schemes are offered in signature_algorithms
// alone or a few together (with every scheme in
// signature_algorithms_cert, so that the chain's own signatures do not
// decide): a ServerHello means the server can sign with one of them, an
// alert that it cannot. A group that is accepted is halved until each
// scheme is known, which keeps the handshakes few: servers such as
// gatehouse count the ones that end after their ServerHello against a
// per-IP budget. The server's order among the schemes cannot be seen this
// way: they are returned in sigAlgGroups13's order. A server that accepts
// every group is asked once more with only a scheme nobody can use: if it
// accepts that too, it does not check the offer and nothing is reported.
func (p *prober) sigAlgs13(ctx context.Context) ([]uint16, error) {
	found := make([][]uint16, len(sigAlgGroups13))
	accepted := make([]bool, len(sigAlgGroups13))
	errs := make([]error, len(sigAlgGroups13))
	var wg sync.WaitGroup
	for i, g := range sigAlgGroups13 {
		wg.Go(func() {
			if accepted[i], errs[i] = p.sigAlg13Accepted(ctx, g...); accepted[i] && errs[i] == nil {
				found[i], errs[i] = p.sigAlgSplit13(ctx, g)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if !slices.Contains(accepted, false) {
		control, err := p.sigAlg13Accepted(ctx, sigAlgGREASE)
		if err != nil {
			return nil, err
		}
		if control {
			return nil, errors.New("tls 1.3 signature algorithms: the server answered an offer of no usable signature scheme (it does not check the offer): not tested")
		}
	}
	got := slices.Concat(found...)
	if len(got) == 0 {
		// A TLS 1.3 server signs with something: refusing every offer
		// means the hello itself was refused (no X25519, say).
		return nil, errors.New("tls 1.3 signature algorithms: not tested: no scheme offered was accepted (the probe needs X25519)")
	}
	return got, nil
}

// sigAlgSplit13 returns the schemes of set, which the server accepted
// together, that it accepts one by one: set is halved, and a half is
// asked about unless the other half's answer already settles it.
func (p *prober) sigAlgSplit13(ctx context.Context, set []uint16) ([]uint16, error) {
	if len(set) == 1 {
		return []uint16{set[0]}, nil // a copy: set shares sigAlgGroups13's array
	}
	left, right := set[:len(set)/2], set[len(set)/2:]
	var got []uint16
	ok, err := p.sigAlg13Accepted(ctx, left...)
	if err != nil {
		return nil, err
	}
	if ok {
		if got, err = p.sigAlgSplit13(ctx, left); err != nil {
			return nil, err
		}
		if ok, err = p.sigAlg13Accepted(ctx, right...); err != nil || !ok {
			return got, err
		}
	}
	// Accepted: asked, or the only half left of an accepted set.
	r, err := p.sigAlgSplit13(ctx, right)
	return slices.Concat(got, r), err
}

// sigAlg13Accepted reports whether the server answers a TLS 1.3
// ClientHello whose only signature schemes are algs with a ServerHello. The
// hello sends an X25519 key share and names only X25519, so that the
// server does not answer with a HelloRetryRequest (sent before a
// certificate is chosen, so it would say nothing).
func (p *prober) sigAlg13Accepted(ctx context.Context, algs ...uint16) (bool, error) {
	ch := p.baseHello(VersionTLS13, suitesFor(VersionTLS13))
	ch.groups = []uint16{0x001d}
	ch.sigAlgs = algs
	ch.sigAlgsCert = slices.Clone(sigAlgOrder)
	r, err := p.hello(ctx, ch, false, false)
	if err != nil {
		return false, fmt.Errorf("tls 1.3 signature algorithms: %w", err)
	}
	if r.accepted() && r.hello.hrr {
		return false, errors.New("tls 1.3 signature algorithms: not tested: the server asked for another key share than X25519")
	}
	return versionAccepted(r, VersionTLS13), nil
}
