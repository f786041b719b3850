package pipeline

import (
	"errors"

	"github.com/gatehouse/gatehouse/internal/revocation"
	"github.com/gatehouse/gatehouse/internal/telemetry/metrics"
)

// count adds the finished exchange to Pipeline.Metrics: one Observe and
// the in-flight gauge down, a few atomic adds. A request forwarded and
// answered is OK whatever the backend's status; a refusal counts as it
// named itself, or by its status; a response cut short (failure) is a
// backend error.
func (ex *Exchange) count(failure string) {
	m := ex.p.Metrics
	if m == nil {
		return
	}
	r := &ex.rec
	o := ex.outcome
	switch {
	case failure != "" && (o == metrics.ByStatus || o == metrics.OK):
		o = metrics.FailedBackend
	case o == metrics.ByStatus && r.Decision == "allow":
		o = metrics.OK
	}
	var rm *metrics.Route
	if ex.route != nil {
		rm = ex.route.Metrics
		if rm == nil {
			rm = m.Route(ex.route.Name)
		}
	}
	m.Observe(rm, r.Status, o, r.Duration, r.BytesIn, r.BytesOut)
	m.End()
}

// revocationOutcome tells a revoked certificate from one whose status
// could not be established.
func revocationOutcome(err error) metrics.Outcome {
	if errors.Is(err, revocation.ErrRevoked) {
		return metrics.DeniedRevoked
	}
	return metrics.DeniedRevocationUnknown
}

// outcome sets rf's outcome and returns it.
func outcome(rf *Refusal, o metrics.Outcome) *Refusal {
	rf.Outcome = o
	return rf
}
