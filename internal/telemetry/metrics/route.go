package metrics

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Route is one route's metrics with every label but the status code
// resolved in advance. Get it once per provisioned route (Metrics.Route)
// and keep it beside the route: counting a request is then a few atomic
// adds. Safe for concurrent use.
type Route struct {
	name     string
	requests *prometheus.CounterVec
	duration prometheus.Observer
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
	backend  [numBackendFailures]prometheus.Counter
	denials  [numDenyReasons]prometheus.Counter
	// codes caches the requests counter per decision and status code,
	// filled on first use: 100-599 by index code-100, and one slot for a
	// code outside that range.
	codes [numDecisions][501]atomic.Pointer[counter]
}

type counter struct{ prometheus.Counter }

// Route returns the metrics of the route named name (NoRoute for requests
// refused before a route matched). The same *Route is returned for the
// same name, so a reload that keeps a route keeps its series.
func (m *Metrics) Route(name string) *Route {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.routes[name]; r != nil {
		return r
	}
	r := &Route{
		name:     name,
		requests: m.requests,
		duration: m.duration.WithLabelValues(name),
		bytesIn:  m.bytesIn.WithLabelValues(name),
		bytesOut: m.bytesOut.WithLabelValues(name),
	}
	for i := range r.backend {
		r.backend[i] = m.backendErrors.WithLabelValues(name, BackendFailure(i).String())
	}
	for i := range r.denials {
		r.denials[i] = m.denials.WithLabelValues(name, DenyReason(i).String())
	}
	m.routes[name] = r
	return r
}

// Name is the route label.
func (r *Route) Name() string { return r.name }

// Done counts one finished request: its status code, decision, duration
// and body sizes (in received, out sent). It allocates only the first
// time a (decision, code) pair is seen on this route.
func (r *Route) Done(code int, d Decision, took time.Duration, in, out int64) {
	r.counter(d, code).Inc()
	r.duration.Observe(took.Seconds())
	if in > 0 {
		r.bytesIn.Add(float64(in))
	}
	if out > 0 {
		r.bytesOut.Add(float64(out))
	}
}

// Denied counts an authorization denial on the route (count the request
// itself with Done, decision Denied).
func (r *Route) Denied(reason DenyReason) { r.denials[reason].Inc() }

// BackendFailed counts a backend failure on the route (count the request
// itself with Done, decision BackendError).
func (r *Route) BackendFailed(kind BackendFailure) { r.backend[kind].Inc() }

func (r *Route) counter(d Decision, code int) prometheus.Counter {
	i := code - 100
	if i < 0 || i >= 500 {
		i = 500
	}
	slot := &r.codes[d][i]
	if c := slot.Load(); c != nil {
		return c.Counter
	}
	label := "other"
	if i < 500 {
		label = strconv.Itoa(code)
	}
	c := &counter{r.requests.WithLabelValues(r.name, label, d.String())}
	slot.Store(c) // a racing store holds the same child: WithLabelValues is idempotent
	return c.Counter
}
