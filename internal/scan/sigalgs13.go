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

// sigAlgs13 finds the signature schemes the server signs its TLS 1.3
// CertificateVerify with. That message is encrypted and the scanner does
// not decrypt TLS 1.3, so each scheme is offered alone in
// signature_algorithms (with every scheme in signature_algorithms_cert, so
// that the chain's own signatures do not decide): a ServerHello means the
// server can sign with it, an alert that it cannot. The server's order
// among them cannot be seen this way: they are returned in sigAlgOrder.
// A server that answers when offered a scheme nobody can use does not
// check the offer, and then nothing is reported.
func (p *prober) sigAlgs13(ctx context.Context) ([]uint16, error) {
	ok := make([]bool, len(sigAlgOrder))
	errs := make([]error, len(sigAlgOrder))
	control, err := p.sigAlg13Accepted(ctx, sigAlgGREASE)
	if err != nil {
		return nil, err
	}
	if control {
		return nil, errors.New("tls 1.3 signature algorithms: the server answered an offer of no usable signature scheme (it does not check the offer): not tested")
	}
	var wg sync.WaitGroup
	for i, alg := range sigAlgOrder {
		wg.Go(func() { ok[i], errs[i] = p.sigAlg13Accepted(ctx, alg) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var got []uint16
	for i, alg := range sigAlgOrder {
		if ok[i] {
			got = append(got, alg)
		}
	}
	if len(got) == 0 {
		// A TLS 1.3 server signs with something: refusing every offer
		// means the hello itself was refused (no X25519, say).
		return nil, errors.New("tls 1.3 signature algorithms: not tested: no scheme offered alone was accepted (the probe needs X25519)")
	}
	return got, nil
}

// sigAlg13Accepted reports whether the server answers a TLS 1.3
// ClientHello whose only signature scheme is alg with a ServerHello. The
// hello sends an X25519 key share and names only X25519, so that the
// server does not answer with a HelloRetryRequest (sent before a
// certificate is chosen, so it would say nothing).
func (p *prober) sigAlg13Accepted(ctx context.Context, alg uint16) (bool, error) {
	ch := p.baseHello(VersionTLS13, suitesFor(VersionTLS13))
	ch.groups = []uint16{0x001d}
	ch.sigAlgs = []uint16{alg}
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
