package config

import (
	"strings"
	"testing"
	"time"
)

func TestObserveSettings(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"defaults", "", ""},
		{"json log", "log: {format: json}\n", ""},
		{"bad log format", "log: {format: xml}\n", `log.format: unknown format "xml" (allowed: text, json)`},
		{"non-loopback refused", "admin: {listen: \"0.0.0.0:9090\"}\n", "admin.listen: \"0.0.0.0:9090\" is not a loopback address"},
		{"non-loopback allowed explicitly", "admin: {listen: \"0.0.0.0:9090\", allow_non_loopback: true, client_ca: ca.pem}\n", ""},
		{"client_ca without listen", "admin: {client_ca: ca.pem}\n", "admin.client_ca: set, but admin.listen is empty"},
		{"webhook", "expiry_alerts: {webhook: \"http://127.0.0.1:9/hook\", thresholds: [14d, 2d]}\n", ""},
		{"webhook scheme", "expiry_alerts: {webhook: \"ftp://x/hook\"}\n", `expiry_alerts.webhook: "ftp://x/hook" is not an http(s) URL`},
		{"thresholds without webhook", "expiry_alerts: {thresholds: [1d]}\n", "expiry_alerts.webhook: required"},
		{"bad threshold", "expiry_alerts: {webhook: \"http://127.0.0.1:9/\", thresholds: [soon]}\n", "expiry_alerts.thresholds[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("g.yaml", []byte(minimal+tc.yaml))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.name == "defaults" {
					if f.Config.Log.Format != "text" || len(f.Config.ExpiryAlerts.ThresholdDurations()) != 3 {
						t.Errorf("defaults: %+v", f.Config.Log)
					}
				}
				if tc.name == "webhook" {
					if got := f.Config.ExpiryAlerts.ThresholdDurations(); len(got) != 2 || got[0] != 14*24*time.Hour {
						t.Errorf("thresholds = %v", got)
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
