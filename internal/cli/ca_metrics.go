package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/pki"
	"github.com/gatehouse/gatehouse/internal/pki/store"
	"github.com/gatehouse/gatehouse/internal/serial"
	"github.com/gatehouse/gatehouse/internal/telemetry/metrics"
	"github.com/gatehouse/gatehouse/internal/telemetry/notify"
	"github.com/gatehouse/gatehouse/internal/units"
)

// caObserver exports a CA's inventory to Prometheus and, with a webhook,
// notifies expiring certificates.
type caObserver struct {
	ca       *pki.CA
	window   time.Duration
	inv      *metrics.CAInventory
	reg      *prometheus.Registry
	notifier *notify.Notifier // nil without --webhook
	log      *slog.Logger
	now      func() time.Time
}

// caInventoryInterval is how often the inventory metrics are recomputed.
const caInventoryInterval = 15 * time.Second

// expiredNotifyFor is how long after expiry an issued certificate stays
// in the notifier's view (long enough for the "expired" notice to go out).
const expiredNotifyFor = 7 * 24 * time.Hour

func newCAObserver(ca *pki.CA, window time.Duration, log *slog.Logger) *caObserver {
	o := &caObserver{ca: ca, window: window, inv: metrics.NewCAInventory(), reg: prometheus.NewRegistry(), log: log, now: time.Now}
	metrics.RegisterRuntime(o.reg)
	o.reg.MustRegister(o.inv)
	return o
}

// refresh recomputes the exported inventory and runs the notifier.
func (o *caObserver) refresh(ctx context.Context) error {
	recs, err := o.ca.Store().List(ctx, store.Filter{})
	if err != nil {
		return fmt.Errorf("ca metrics: %w", err)
	}
	now := o.now()
	in := make([]metrics.CARecord, len(recs))
	bySerial := make(map[string]*store.Record, len(recs))
	for i := range recs {
		r := &recs[i]
		r.Serial = opensslSerial(r.Serial) // the form logs, audit records and ca list print
		in[i] = metrics.CARecord{Profile: r.Profile, Serial: r.Serial, NotAfter: r.NotAfter, Revoked: r.Status == store.StatusRevoked,
			SelfRenewing: r.Profile == pki.ProfileOCSPSigner}
		bySerial[r.Serial] = r
	}
	snap := metrics.Summarize(in, now, o.window, metrics.DefaultExpiringLimit)
	// The common name comes from the certificate itself, parsed only for
	// the few exported.
	for i := range snap.Expiring {
		snap.Expiring[i].SubjectCN = commonName(bySerial[snap.Expiring[i].Serial])
	}
	if crl, err := o.ca.LatestCRL(ctx); err == nil {
		snap.CRLNumber, snap.CRLNextUpdate = crl.Number, crl.NextUpdate
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("ca metrics: %w", err)
	}
	snap.Certificates = o.caCertificates()
	o.inv.Set(snap)
	if o.notifier == nil {
		return nil
	}
	horizon := slices.Max(o.notifier.Thresholds)
	certs := o.caCertificates()
	for i := range recs {
		r := &recs[i]
		left := r.NotAfter.Sub(now)
		if r.Status == store.StatusRevoked || r.Profile == pki.ProfileOCSPSigner || left > horizon || left < -expiredNotifyFor {
			continue
		}
		certs = append(certs, metrics.Certificate{Role: "issued_" + r.Profile, Subject: r.Subject, SubjectCN: commonName(r),
			Serial: r.Serial, NotBefore: r.NotBefore, NotAfter: r.NotAfter})
	}
	return o.notifier.Check(ctx, certs)
}

func (o *caObserver) caCertificates() []metrics.Certificate {
	root, issuer := o.ca.Root(), o.ca.Issuer()
	out := []metrics.Certificate{metrics.CertificateOf(metrics.RoleCARoot, filepath.Join(o.ca.Dir(), "ca.pem"), root)}
	if issuer != nil && !issuer.Equal(root) {
		out = append(out, metrics.CertificateOf(metrics.RoleCAIntermediate, filepath.Join(o.ca.Dir(), "intermediate.pem"), issuer))
	}
	return out
}

func commonName(r *store.Record) string {
	if r == nil {
		return ""
	}
	if c, err := x509.ParseCertificate(r.DER); err == nil {
		return c.Subject.CommonName
	}
	return ""
}

// run refreshes every interval until ctx is done.
func (o *caObserver) run(ctx context.Context) {
	t := time.NewTicker(caInventoryInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := o.refresh(ctx); err != nil && ctx.Err() == nil {
				o.log.Warn("ca serve: inventory metrics or expiry webhook", "err", err)
			}
		}
	}
}

// serve serves /metrics on addr until ctx is done.
func (o *caObserver) serve(ctx context.Context, addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ca serve: metrics listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(o.reg))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(o.log.Handler(), slog.LevelDebug)}
	go srv.Serve(ln)
	go func() { <-ctx.Done(); srv.Close() }()
	return ln.Addr(), nil
}

// checkMetricsListen refuses a non-loopback metrics address unless allowed:
// the inventory names every certificate about to expire.
func checkMetricsListen(addr string, allow bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usageError(fmt.Errorf("--metrics-listen %q: not host:port (use e.g. 127.0.0.1:9091)", addr))
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) && !allow {
		return usageError(fmt.Errorf("--metrics-listen %q: not a loopback address; the inventory names the certificates about to expire (use 127.0.0.1, or add --metrics-allow-non-loopback)", addr))
	}
	return nil
}

// parseThresholds parses "30d,7d,1d".
func parseThresholds(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, p := range strings.Split(s, ",") {
		d, err := units.ParseDuration(strings.TrimSpace(p))
		if err != nil || d <= 0 {
			return nil, usageError(fmt.Errorf("--webhook-thresholds %q: %q is not a positive duration (use e.g. 30d,7d,1d)", s, p))
		}
		out = append(out, d)
	}
	return out, nil
}

// caObserveFlags are the observability flags of `ca serve`.
type caObserveFlags struct {
	metricsListen, warnWithin                string
	allowNonLoopback                         bool
	webhook, webhookThresholds, webhookState string
}

func (f *caObserveFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.metricsListen, "metrics-listen", "", "serve the inventory metrics at http://ADDR/metrics (loopback; off by default)")
	fl.BoolVar(&f.allowNonLoopback, "metrics-allow-non-loopback", false, "allow a --metrics-listen address beyond loopback")
	fl.StringVar(&f.warnWithin, "warn-within", "30d", "export a per-certificate expiry gauge for the valid certificates expiring within this window")
	fl.StringVar(&f.webhook, "webhook", "", "POST a JSON notice (Slack-compatible) to this URL when an issued or CA certificate enters a warning window")
	fl.StringVar(&f.webhookThresholds, "webhook-thresholds", "30d,7d,1d", "the warning windows of --webhook")
	fl.StringVar(&f.webhookState, "webhook-state", "", "the record of notices sent (default DIR/expiry-alerts.json)")
}

// start validates the flags, refreshes the inventory once and starts the
// metrics listener, the refresh loop and the notifier, bound to env's
// context.
func (f *caObserveFlags) start(env *Env, ca *pki.CA, log *slog.Logger) error {
	if f.metricsListen == "" && f.webhook == "" {
		return nil
	}
	window, err := parseDurationFlag("warn-within", f.warnWithin)
	if err != nil {
		return err
	}
	o := newCAObserver(ca, window, log)
	if f.webhook != "" {
		if u, err := url.Parse(f.webhook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageError(fmt.Errorf("--webhook %q: not an http(s) URL", f.webhook))
		}
		th, err := parseThresholds(f.webhookThresholds)
		if err != nil {
			return err
		}
		state := f.webhookState
		if state == "" {
			state = filepath.Join(ca.Dir(), "expiry-alerts.json")
		}
		o.notifier = &notify.Notifier{URL: f.webhook, Thresholds: th, StatePath: state, Source: "ca", Log: log}
	}
	ctx := env.ctx()
	if f.metricsListen != "" {
		if err := checkMetricsListen(f.metricsListen, f.allowNonLoopback); err != nil {
			return err
		}
	}
	if err := o.refresh(ctx); err != nil {
		log.Warn("ca serve: inventory metrics or expiry webhook", "err", err)
	}
	if f.metricsListen != "" {
		addr, err := o.serve(ctx, f.metricsListen)
		if err != nil {
			return err
		}
		// A ready line, like the one for the main listener.
		fmt.Fprintf(env.Stdout, "gatehouse ca serve: metrics at http://%s/metrics\n", addr)
	}
	go o.run(ctx)
	return nil
}

// opensslSerial converts a serial as the inventory stores it to openssl's
// form (serial.Format); one that does not parse is kept as it is.
func opensslSerial(s string) string {
	if n, err := serial.Parse(s); err == nil {
		return serial.Format(n)
	}
	return s
}
