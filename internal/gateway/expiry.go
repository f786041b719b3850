package gateway

import (
	"context"
	"crypto/x509"
	"github.com/gatehouse/gatehouse/internal/serial"
	"time"
)

// ExpiryWarning is how close to expiry a served certificate (or one of
// its intermediates) gets before the gateway warns.
const ExpiryWarning = 30 * 24 * time.Hour

// warnExpiring logs every certificate the gateway serves that expires
// within ExpiryWarning of now.
func (s *Server) warnExpiring(snap *snapshot) {
	now := s.now()
	for i, c := range snap.tls.Certificates {
		for j, der := range c.Certificate {
			x, err := x509.ParseCertificate(der)
			if err != nil {
				continue
			}
			left := x.NotAfter.Sub(now)
			if left > ExpiryWarning {
				continue
			}
			msg := "served certificate expires soon: renew it"
			if left <= 0 {
				msg = "served certificate has expired: clients will refuse it"
			}
			role := "leaf"
			if j > 0 {
				role = "intermediate"
			}
			s.log.Warn(msg, "certificate", i, "role", role, "subject", x.Subject.String(),
				"serial", serial.Format(x.SerialNumber), "not_after", x.NotAfter.UTC().Format(time.RFC3339),
				"days_left", int(left.Hours()/24))
		}
	}
}

// watchExpiry repeats warnExpiring every interval until ctx is done, so a
// long-running gateway keeps reminding.
func (s *Server) watchExpiry(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.warnExpiring(s.snap.Load())
		}
	}
}
