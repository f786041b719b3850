package enroll

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	"github.com/gatehouse/gatehouse/internal/certsource"
	"github.com/gatehouse/gatehouse/internal/pki"
	"github.com/gatehouse/gatehouse/internal/serial"
)

// Clock is the time a Renewer schedules by. Tests inject one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Renewer keeps a certificate and key file pair fresh: it renews at two
// thirds of the certificate's lifetime (minus a random jitter of up to a
// twentieth, so that a fleet issued together does not renew together),
// retries with exponential backoff while the CA is unavailable, writes
// both files atomically, then runs Hook.
type Renewer struct {
	// Client reaches the CA. Required.
	Client *Client
	// CertFile (chain PEM) and KeyFile (PEM) are read and rewritten.
	// Required.
	CertFile, KeyFile string
	// KeyPassphrase decrypts the key file and encrypts the new one. If
	// empty, the key file is not encrypted (mode 0600).
	KeyPassphrase []byte
	// KeepKey renews for the current key. If false, each renewal
	// generates a new key of the same type.
	KeepKey bool
	// Hook runs after the new files are in place (reload a server, send a
	// signal). Its error is logged; the renewal stands. If nil, nothing.
	Hook func(ctx context.Context, leaf *x509.Certificate) error
	// Log receives one line per renewal and per failure. If nil,
	// slog.Default().
	Log *slog.Logger
	// Clock schedules renewals. If nil, the real clock.
	Clock Clock
	// MinBackoff and MaxBackoff bound the wait between failed attempts.
	// If zero, 1s and 5m (and never more than a tenth of the lifetime).
	MinBackoff, MaxBackoff time.Duration
}

func (r *Renewer) clock() Clock {
	if r.Clock == nil {
		return realClock{}
	}
	return r.Clock
}

func (r *Renewer) log() *slog.Logger {
	if r.Log == nil {
		return slog.Default()
	}
	return r.Log
}

// Load reads the current certificate and key.
func (r *Renewer) Load() (tls.Certificate, error) {
	c, err := certsource.LoadKeyPair(r.CertFile, r.KeyFile, r.KeyPassphrase)
	if err != nil {
		return tls.Certificate{}, err
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return tls.Certificate{}, fmt.Errorf("load %s: %w", r.CertFile, err)
		}
	}
	return c, nil
}

// RenewAt is when leaf is due: two thirds into its lifetime, less jitter.
func (r *Renewer) RenewAt(leaf *x509.Certificate) time.Time {
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	at := leaf.NotBefore.Add(life * 2 / 3)
	if j := int64(life / 20); j > 0 {
		at = at.Add(-time.Duration(rand.Int64N(j)))
	}
	return at
}

// RenewNow renews the certificate now, writes the files and runs the hook.
func (r *Renewer) RenewNow(ctx context.Context) (*x509.Certificate, error) {
	cur, err := r.Load()
	if err != nil {
		return nil, err
	}
	key, ok := cur.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("renew: key in %s cannot sign", r.KeyFile)
	}
	if !r.KeepKey {
		if key, err = newKeyLike(key); err != nil {
			return nil, fmt.Errorf("renew: %w", err)
		}
	}
	chain, err := r.Client.Renew(ctx, cur, key)
	if err != nil {
		return nil, err
	}
	keyPEM, err := pki.MarshalKeyPEM(key, r.KeyPassphrase)
	if err != nil {
		return nil, fmt.Errorf("renew: %w", err)
	}
	certPerm := os.FileMode(0o644)
	if fi, err := os.Stat(r.CertFile); err == nil {
		certPerm = fi.Mode().Perm()
	}
	if err := pki.WriteFiles(
		pki.File{Path: r.CertFile, Data: pki.CertsPEM(chain...), Perm: certPerm},
		pki.File{Path: r.KeyFile, Data: keyPEM, Perm: 0o600},
	); err != nil {
		return nil, fmt.Errorf("renew: %w", err)
	}
	leaf := chain[0]
	r.log().Info("certificate renewed", "cert", r.CertFile, "subject", leaf.Subject.String(),
		"old_serial", serial.Format(cur.Leaf.SerialNumber), "serial", serial.Format(leaf.SerialNumber),
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	if r.Hook != nil {
		if err := r.Hook(ctx, leaf); err != nil {
			r.log().Error("renewal hook failed", "cert", r.CertFile, "err", err)
		}
	}
	return leaf, nil
}

// Run renews whenever the certificate is due until ctx is done, and then
// returns nil. It returns an error when the files cannot be read or the
// CA refuses the renewal for good (revoked, expired beyond grace): no
// retry would help, and a supervisor should hear of it.
func (r *Renewer) Run(ctx context.Context) error {
	for {
		cur, err := r.Load()
		if err != nil {
			return err
		}
		leaf := cur.Leaf
		at := r.RenewAt(leaf)
		r.log().Info("next renewal", "cert", r.CertFile, "at", at.UTC().Format(time.RFC3339), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
		if wait := at.Sub(r.clock().Now()); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-r.clock().After(wait):
			}
		}
		if err := r.renewWithBackoff(ctx, leaf); err != nil || ctx.Err() != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

func (r *Renewer) renewWithBackoff(ctx context.Context, leaf *x509.Certificate) error {
	lo, hi := r.MinBackoff, r.MaxBackoff
	if lo <= 0 {
		lo = time.Second
	}
	if hi <= 0 {
		hi = min(5*time.Minute, max(leaf.NotAfter.Sub(leaf.NotBefore)/10, lo))
	}
	backoff := lo
	for {
		_, err := r.RenewNow(ctx)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		var ue *UnavailableError
		if !errors.As(err, &ue) {
			r.log().Error("renewal refused; giving up", "cert", r.CertFile, "err", err)
			return err
		}
		// Full jitter: a fleet that lost its CA does not come back in step.
		wait := backoff/2 + time.Duration(rand.Int64N(int64(backoff/2)+1))
		r.log().Warn("renewal failed; retrying", "cert", r.CertFile, "in", wait.String(), "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-r.clock().After(wait):
		}
		backoff = min(backoff*2, hi)
	}
}

// newKeyLike generates a new key of old's type and size.
func newKeyLike(old crypto.Signer) (crypto.Signer, error) {
	switch k := old.Public().(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P384() {
			return pki.KeyECDSAP384.Generate()
		}
		return pki.KeyECDSAP256.Generate()
	case ed25519.PublicKey:
		return pki.KeyEd25519.Generate()
	case *rsa.PublicKey:
		return pki.KeyRSA3072.Generate()
	}
	return nil, fmt.Errorf("new key: unsupported key type %T", old.Public())
}
