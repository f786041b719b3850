package cli

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"

	"github.com/gatehouse/gatehouse/internal/certsource"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pki/enroll"
)

// startRenewers starts one background renewer per served certificate that
// names `renew:`. A renewal rewrites the certificate and key files
// atomically and then reloads the gateway at once, through the same path
// as a file change (build completely, then swap; never fail open), so the
// new certificate serves from the next handshake, with no restart and no
// dropped connection. The renewers follow the configuration the gateway
// started with; a changed `renew:` takes effect after a restart.
func startRenewers(ctx context.Context, f *config.File, rl *reloader, log *slog.Logger) error {
	for i, ck := range f.Config.ServerTLS.Certificates {
		if ck.Renew == nil {
			continue
		}
		field := fmt.Sprintf("server_tls.certificates[%d].renew", i)
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
			if pass, err = certsource.ReadPassphrase(f.Resolve(ck.KeyPassphraseFile)); err != nil {
				return fmt.Errorf("server_tls.certificates[%d].key_passphrase_file: %w", i, err)
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
