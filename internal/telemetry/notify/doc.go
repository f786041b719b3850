// Package notify posts a webhook when a certificate enters an expiry
// warning window (30d, 7d, 1d by default), once per certificate and window,
// with retries, and records what was sent so that a restart does not send
// it again. The payload carries a Slack-compatible "text" and the same
// facts as structured fields for any other receiver.
package notify
