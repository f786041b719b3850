package notify

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry/metrics"
	"github.com/gatehouse/gatehouse/internal/units"
)

// Defaults for the zero values of Notifier.
const (
	DefaultAttempts = 5
	DefaultBackoff  = time.Second
	DefaultTimeout  = 10 * time.Second
	DefaultInterval = time.Hour
)

// Notifier sends expiry webhooks. Configure the fields, then call Check
// (or Run); do not change them afterwards. Safe for concurrent use.
type Notifier struct {
	// URL is the webhook (http or https). Required. It often holds a
	// secret token, so it is never logged, only its host.
	URL string
	// Thresholds are the warning windows, in any order. A certificate is
	// notified once when its remaining time drops to or below each
	// threshold it crosses (only the smallest one crossed, when several
	// are crossed at once), and once more when it has expired. Required.
	Thresholds []time.Duration
	// StatePath is the file recording what was sent. If empty, the record
	// is kept in memory only (a restart sends again).
	StatePath string
	// Source names the sender in the payload: "gateway" or "ca".
	Source string
	// Client posts the webhook. If nil, a client with DefaultTimeout.
	Client *http.Client
	// Attempts bounds the tries of one notification. If zero, DefaultAttempts.
	Attempts int
	// Backoff is the wait after the first failed try, doubled after each
	// further one. If zero, DefaultBackoff.
	Backoff time.Duration
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
	// Log receives what was sent and what failed. If nil, slog.Default().
	Log *slog.Logger

	mu     sync.Mutex // one Check at a time; guards state
	state  *state
	loaded bool
}

// state is what was sent: per certificate key, the windows notified and
// when. Saved as JSON.
type state struct {
	Sent map[string]map[string]time.Time `json:"sent"`
}

// Payload is the JSON body posted.
type Payload struct {
	// Text is the human message; Slack and Mattermost display it as is.
	Text string `json:"text"`
	// Event is certificate_expiring or certificate_expired.
	Event  string `json:"event"`
	Source string `json:"source"`
	// Threshold is the window entered ("7d"), "expired" after expiry.
	Threshold        string              `json:"threshold"`
	ThresholdSeconds int64               `json:"threshold_seconds"`
	ExpiresInSeconds int64               `json:"expires_in_seconds"`
	Certificate      metrics.Certificate `json:"certificate"`
	SentAt           time.Time           `json:"sent_at"`
}

// Key identifies a certificate in the record: a renewed certificate has
// another serial and is notified afresh.
func Key(c metrics.Certificate) string {
	return c.Role + "|" + c.File + "|" + c.Serial + "|" + strconv.FormatInt(c.NotAfter.Unix(), 10)
}

func (n *Notifier) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

func (n *Notifier) log() *slog.Logger { return cmp.Or(n.Log, slog.Default()) }

// window returns the name and size of the window c is in at now, or ok
// false when it is outside every threshold.
func (n *Notifier) window(c metrics.Certificate, now time.Time) (name string, size time.Duration, ok bool) {
	left := c.NotAfter.Sub(now)
	if left <= 0 {
		return "expired", 0, true
	}
	th := slices.Clone(n.Thresholds)
	slices.Sort(th)
	for _, t := range th {
		if left <= t {
			return units.FormatDuration(t), t, true
		}
	}
	return "", 0, false
}

// Check notifies every certificate of certs that has entered a window
// not yet notified. Certificates no longer listed are dropped from the
// record. It returns the failures joined; what failed is tried again at
// the next Check.
func (n *Notifier) Check(ctx context.Context, certs []metrics.Certificate) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.load(); err != nil {
		return err
	}
	now := n.now()
	live := map[string]bool{}
	var errs []error
	changed := false
	for _, c := range certs {
		key := Key(c)
		live[key] = true
		name, size, ok := n.window(c, now)
		if !ok {
			continue
		}
		if _, sent := n.state.Sent[key][name]; sent {
			continue
		}
		if err := n.send(ctx, n.payload(c, name, size, now)); err != nil {
			errs = append(errs, fmt.Errorf("notify %s (serial %s) %s: %w", c.Subject, c.Serial, name, err))
			continue
		}
		if n.state.Sent[key] == nil {
			n.state.Sent[key] = map[string]time.Time{}
		}
		n.state.Sent[key][name] = now
		changed = true
		// Save after each success: a crash must not lose what was sent.
		if err := n.save(); err != nil {
			errs = append(errs, err)
		}
	}
	for key := range n.state.Sent {
		if !live[key] {
			delete(n.state.Sent, key)
			changed = true
		}
	}
	if changed {
		if err := n.save(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Run checks certs() now and then every interval (DefaultInterval if
// zero) until ctx is done, logging failures.
func (n *Notifier) Run(ctx context.Context, interval time.Duration, certs func() []metrics.Certificate) {
	interval = cmp.Or(interval, DefaultInterval)
	for {
		if err := n.Check(ctx, certs()); err != nil && ctx.Err() == nil {
			n.log().Error("expiry webhook: not delivered; will try again", "err", err, "next_try_in", interval)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

func (n *Notifier) payload(c metrics.Certificate, name string, size time.Duration, now time.Time) Payload {
	left := c.NotAfter.Sub(now)
	p := Payload{
		Event: "certificate_expiring", Source: cmp.Or(n.Source, "gatehouse"), Threshold: name,
		ThresholdSeconds: int64(size / time.Second), ExpiresInSeconds: int64(left / time.Second),
		Certificate: c, SentAt: now.UTC(),
	}
	what := fmt.Sprintf("%s certificate %q (serial %s", c.Role, c.Subject, c.Serial)
	if c.File != "" {
		what += ", " + c.File
	}
	what += ")"
	if name == "expired" {
		p.Event = "certificate_expired"
		p.Text = fmt.Sprintf("gatehouse %s: %s EXPIRED at %s. Renew it now.", p.Source, what, c.NotAfter.UTC().Format(time.RFC3339))
	} else {
		p.Text = fmt.Sprintf("gatehouse %s: %s expires in %s, at %s (warning window %s). Renew it.", p.Source, what,
			humanLeft(left), c.NotAfter.UTC().Format(time.RFC3339), name)
	}
	return p
}

func humanLeft(d time.Duration) string {
	if d >= 48*time.Hour {
		return strconv.Itoa(int(d/(24*time.Hour))) + " days"
	}
	if d >= 2*time.Hour {
		return strconv.Itoa(int(d/time.Hour)) + " hours"
	}
	return strconv.Itoa(int(d/time.Minute)) + " minutes"
}

// send posts p, retrying with exponential backoff on network errors,
// 429 and 5xx answers. Another 4xx is not retried: the receiver refuses
// the request as it is.
func (n *Notifier) send(ctx context.Context, p Payload) error {
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	client := n.Client
	if client == nil {
		client = &http.Client{Timeout: DefaultTimeout}
	}
	attempts := cmp.Or(n.Attempts, DefaultAttempts)
	wait := cmp.Or(n.Backoff, DefaultBackoff)
	host := "webhook"
	if u, err := url.Parse(n.URL); err == nil {
		host = u.Host
	}
	var last error
	for i := range attempts {
		if i > 0 {
			select {
			case <-ctx.Done():
				return errors.Join(last, ctx.Err())
			case <-time.After(wait):
			}
			wait *= 2
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.URL, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("post to %s: %w", host, err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "gatehouse-notify")
		resp, err := client.Do(req)
		if err != nil {
			// The error text names the URL, token and all: keep the host.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			last = fmt.Errorf("post to %s: %w", host, err)
			continue
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		switch {
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			n.log().Info("expiry webhook sent", "to", host, "event", p.Event, "threshold", p.Threshold,
				"subject", p.Certificate.Subject, "serial", p.Certificate.Serial, "not_after", p.Certificate.NotAfter, "attempt", i+1)
			return nil
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			last = fmt.Errorf("post to %s: HTTP %s", host, resp.Status)
		default:
			return fmt.Errorf("post to %s: HTTP %s (not retried: the receiver refuses the request)", host, resp.Status)
		}
	}
	return fmt.Errorf("%w (after %d attempts)", last, attempts)
}

func (n *Notifier) load() error {
	if n.loaded {
		return nil
	}
	n.state = &state{Sent: map[string]map[string]time.Time{}}
	if n.StatePath != "" {
		data, err := os.ReadFile(n.StatePath)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return fmt.Errorf("read notification record: %w", err)
		default:
			if err := json.Unmarshal(data, n.state); err != nil {
				return fmt.Errorf("read notification record %s: %w (fix or remove the file)", n.StatePath, err)
			}
			if n.state.Sent == nil {
				n.state.Sent = map[string]map[string]time.Time{}
			}
		}
	}
	n.loaded = true
	return nil
}

// save writes the record atomically (temporary file, then rename).
func (n *Notifier) save() error {
	if n.StatePath == "" {
		return nil
	}
	data, err := json.MarshalIndent(n.state, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(n.StatePath), ".gatehouse-alerts-*")
	if err != nil {
		return fmt.Errorf("save notification record: %w", err)
	}
	_, err = tmp.Write(append(data, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), n.StatePath)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save notification record: %w", err)
	}
	return nil
}
