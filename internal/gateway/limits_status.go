package gateway

import (
	"github.com/gatehouse/gatehouse/internal/ratelimit"
)

// LimitsStatus is the state of the gateway's limits for /readyz details
// and /status.
type LimitsStatus struct {
	// Store is the shared rate limit store's state; nil when limits are
	// kept in memory. While Store.Shared is false each gateway enforces
	// its limits alone (the gateway still serves: it is not unready).
	Store *ratelimit.Status `json:"rate_limit_store,omitempty"`
	// HandshakesRefused counts handshakes refused at the ClientHello for
	// an IP over its handshake budget.
	HandshakesRefused int64 `json:"handshakes_refused"`
}

// LimitsStatus returns the limits' current state.
func (s *Server) LimitsStatus() LimitsStatus {
	var st LimitsStatus
	if snap := s.snap.Load(); snap != nil && snap.guard != nil {
		st.Store = snap.guard.Status()
		st.HandshakesRefused = snap.guard.Handshakes().Refused()
	}
	return st
}

// limitsReadyDetail is the /readyz detail line about the rate limit
// store, "" when limits are kept in memory.
func (s *Server) limitsReadyDetail() string {
	st := s.LimitsStatus().Store
	switch {
	case st == nil:
		return ""
	case st.Shared:
		return "rate_limit_store: shared (redis)\n"
	}
	return "rate_limit_store: local fallback since " + st.Since.UTC().Format("2006-01-02T15:04:05Z") + " (redis unreachable: " + st.LastError + ")\n"
}
