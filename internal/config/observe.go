package config

import (
	"net/url"
	"slices"
	"strconv"
	"time"
)

// ExpiryAlerts configures the expiry webhook: when a certificate the
// gateway serves, trusts or uses comes within a threshold of its expiry,
// one JSON POST per certificate and threshold.
type ExpiryAlerts struct {
	// Webhook is the http(s) URL posted to. Empty (the default) disables
	// the alerts.
	Webhook string `yaml:"webhook"`
	// Thresholds are the warning windows. Default 30d, 7d, 1d.
	Thresholds []Duration `yaml:"thresholds"`
	// StateFile records what was sent, so that a restart does not send it
	// again. Default: gatehouse-alerts.json beside the configuration file.
	StateFile string `yaml:"state_file"`
}

// DefaultExpiryThresholds are the default warning windows.
var DefaultExpiryThresholds = []time.Duration{30 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour}

// ThresholdDurations returns the thresholds, or the defaults when none are
// configured.
func (a ExpiryAlerts) ThresholdDurations() []time.Duration {
	if len(a.Thresholds) == 0 {
		return slices.Clone(DefaultExpiryThresholds)
	}
	out := make([]time.Duration, len(a.Thresholds))
	for i, d := range a.Thresholds {
		out[i] = time.Duration(d)
	}
	return out
}

func (c *Config) validateObserve(ps *problems) {
	switch c.Log.Format {
	case "text", "json":
	default:
		ps.add("log.format", "unknown format %q (allowed: text, json)", c.Log.Format)
	}
	if c.Admin.ClientCA != "" && c.Admin.Listen == "" {
		ps.add("admin.client_ca", "set, but admin.listen is empty (set admin.listen or remove admin.client_ca)")
	}
	a := c.ExpiryAlerts
	if a.Webhook != "" {
		if u, err := url.Parse(a.Webhook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ps.add("expiry_alerts.webhook", "%q is not an http(s) URL (use e.g. \"https://hooks.example.com/T000/B000\")", a.Webhook)
		}
	} else if len(a.Thresholds) > 0 || a.StateFile != "" {
		ps.add("expiry_alerts.webhook", "required when expiry_alerts has thresholds or a state_file")
	}
	for i, d := range a.Thresholds {
		if d <= 0 {
			ps.add("expiry_alerts.thresholds["+strconv.Itoa(i)+"]", "must be greater than zero (e.g. 30d)")
		}
	}
}
