package cli

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pki/enroll"
	"github.com/gatehouse/gatehouse/internal/secretfile"
)

// startRenewers starts one background renewer per served certificate and
// per upstream client certificate that names `renew:`. A renewal rewrites the certificate and key files
// atomically and then reloads the gateway at once, through the same path
// as a file change (build completely, then swap; never fail open), so the
// new certificate serves from the next handshake, with no restart and no
// dropped connection. The renewers follow the configuration the gateway
// started with; a changed `renew:` takes effect after a restart.
func startRenewers(ctx context.Context, f *config.File, rl *reloader, log *slog.Logger) error {
	type pair struct {
		field            string
		cert, key, passF string
		renew            *config.Renew
	}
	var pairs []pair
	for i, ck := range f.Config.ServerTLS.Certificates {
		if ck.Renew != nil {
			pairs = append(pairs, pair{fmt.Sprintf("server_tls.certificates[%d]", i), ck.Cert, ck.Key, ck.KeyPassphraseFile, ck.Renew})
		}
	}
	for i, r := range f.Config.Routes {
		if u := r.UpstreamTLS; u != nil && u.Renew != nil {
			pairs = append(pairs, pair{fmt.Sprintf("routes[%d].upstream_tls", i), u.Cert, u.Key, "", u.Renew})
		}
	}
	for _, p := range pairs {
		ck := config.CertKey{Cert: p.cert, Key: p.key, KeyPassphraseFile: p.passF, Renew: p.renew}
		field := p.field + ".renew"
		roots, err := enroll.LoadRoots(f.Resolve(ck.Renew.Root))
		if err != nil {
			return fmt.Errorf("%s.root: %w", field, err)
		}
		client, err := enroll.NewClient(ck.Renew.CAURL, roots)
		if err != nil {
			return fmt.Errorf("%s.ca_url: %w", field, err)
		}
		var pass []byte
		if ck.KeyPassphraseFile != "" {
			if pass, err = secretfile.Read(f.Resolve(ck.KeyPassphraseFile), "key passphrase"); err != nil {
				return fmt.Errorf("%s.key_passphrase_file: %w", p.field, err)
			}
		}
		r := &enroll.Renewer{
			Client: client, CertFile: f.Resolve(ck.Cert), KeyFile: f.Resolve(ck.Key), KeyPassphrase: pass,
			Log: log.With("renew", field), Clock: renewClock,
			Hook: func(context.Context, *x509.Certificate) error {
				rl.reload("certificate renewed")
				return nil
			},
		}
		if _, err := r.Load(); err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		go func() {
			if err := r.Run(ctx); err != nil {
				log.Error("certificate renewal stopped; the current certificate serves until it expires", "renew", field, "err", err)
			}
		}()
	}
	return nil
}
