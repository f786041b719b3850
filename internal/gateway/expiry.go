package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/serial"
)

// ExpiryWarning is how close to expiry a served certificate (or one of
// its intermediates) gets before the gateway warns.
const ExpiryWarning = 30 * 24 * time.Hour

// expiryStage is how far a served certificate has come towards expiry, as
// far as the log has been told.
type expiryStage uint8

const (
	expirySoon    expiryStage = iota + 1 // within ExpiryWarning
	expiryExpired                        // past NotAfter
)

// expiryWarned remembers, per certificate (SHA-256 of its DER), the last
// stage logged, so that each stage is logged once per process: a reload,
// above all the one after every renewal of a short-lived certificate,
// does not repeat a warning already given.
type expiryWarned struct {
	mu    sync.Mutex
	stage map[[sha256.Size]byte]expiryStage
}

// warnExpiring logs each certificate the gateway serves that has come
// within ExpiryWarning of now, once, and once more when it has expired.
// Certificates no longer served are forgotten, so the record stays as
// small as the configuration.
func (s *Server) warnExpiring(snap *snapshot) {
	now := s.now()
	w := &s.expiry
	w.mu.Lock()
	defer w.mu.Unlock()
	served := make(map[[sha256.Size]byte]expiryStage, len(w.stage))
	for i, c := range snap.tls.Certificates {
		for j, der := range c.Certificate {
			x, err := x509.ParseCertificate(der)
			if err != nil {
				continue
			}
			fp := sha256.Sum256(der)
			told, again := served[fp]
			if !again { // the same intermediate may be in several chains
				told = w.stage[fp]
				served[fp] = told
			}
			left := x.NotAfter.Sub(now)
			stage, msg := expirySoon, "served certificate expires soon: renew it"
			switch {
			case left > ExpiryWarning:
				continue
			case left <= 0:
				stage, msg = expiryExpired, "served certificate has expired: clients will refuse it"
			}
			if told >= stage {
				continue
			}
			served[fp] = stage
			role := "leaf"
			if j > 0 {
				role = "intermediate"
			}
			s.log.Warn(msg, "certificate", i, "role", role, "subject", x.Subject.String(),
				"serial", serial.Format(x.SerialNumber), "not_after", x.NotAfter.UTC().Format(time.RFC3339),
				"days_left", int(left.Hours()/24))
		}
	}
	w.stage = served
}

// watchExpiry repeats warnExpiring every interval until ctx is done, so
// that a certificate crossing into the warning window, or expiring, while
// nothing reloads is still logged.
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
