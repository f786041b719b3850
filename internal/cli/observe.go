package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/telemetry/notify"
)

// serveAdmin starts the admin listener of gw as configured: plain HTTP,
// or with admin.client_ca TLS requiring a client certificate from that CA.
func serveAdmin(f *config.File, gw *gateway.Server, logger *slog.Logger) (stop func(), err error) {
	a := f.Config.Admin
	var tc *tls.Config
	if a.ClientCA != "" {
		if tc, err = gw.AdminTLSConfig(f.Resolve(a.ClientCA)); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", a.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin listen: %w", err)
	}
	scheme := "http"
	if tc != nil {
		ln, scheme = tls.NewListener(ln, tc), "https"
	}
	srv := &http.Server{
		Handler: gw.AdminHandler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("admin server stopped", "err", err)
		}
	}()
	host, _, _ := net.SplitHostPort(ln.Addr().String())
	if ip := net.ParseIP(host); ip != nil && !ip.IsLoopback() && tc == nil {
		logger.Warn("admin endpoints listen beyond loopback without a client certificate requirement (admin.client_ca)", "addr", ln.Addr().String())
	}
	logger.Info("admin listening", "addr", ln.Addr().String(), "scheme", scheme, "endpoints", "/metrics /status /healthz /readyz")
	return func() { srv.Close() }, nil
}

// startExpiryAlerts runs the expiry webhook for the gateway's
// certificates until ctx is done, when expiry_alerts.webhook is set.
func startExpiryAlerts(ctx context.Context, f *config.File, gw *gateway.Server, logger *slog.Logger) {
	a := f.Config.ExpiryAlerts
	if a.Webhook == "" {
		return
	}
	state := a.StateFile
	if state == "" {
		state = "gatehouse-alerts.json"
	}
	n := &notify.Notifier{URL: a.Webhook, Thresholds: a.ThresholdDurations(), StatePath: f.Resolve(state), Source: "gateway", Log: logger}
	go n.Run(ctx, notify.DefaultInterval, gw.Certificates)
}
