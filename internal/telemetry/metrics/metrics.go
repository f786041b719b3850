package metrics

import (
	"crypto/tls"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NoRoute is the route label of requests refused before a route matched
// (bad path, 421, no route). Route names cannot contain parentheses, so it
// never collides with a configured route.
const NoRoute = "(none)"

// Metrics holds the gateway's metric families. It is safe for concurrent
// use. The zero value is not usable: call New.
type Metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	bytesIn       *prometheus.CounterVec
	bytesOut      *prometheus.CounterVec
	inFlight      prometheus.Gauge
	backendErrors *prometheus.CounterVec
	denials       *prometheus.CounterVec
	misdirected   [numMisdirected]prometheus.Counter
	refused       [numGates]prometheus.Counter
	handshakes    *prometheus.CounterVec
	hsFailures    [numHandshakeFailures]prometheus.Counter
	reloads       [2]prometheus.Counter // failure, success
	reloadOK      prometheus.Gauge
	reloadTime    prometheus.Gauge

	mu      sync.Mutex
	routes  map[string]*Route
	noRoute *Route // requests refused before a route matched
	// hs caches the handshake counter of each (version, cipher, group,
	// resumed) seen, so a handshake costs a map read, not a label lookup.
	hs sync.Map // uint64 -> prometheus.Counter

	inv *inventoryCollector
}

// DurationBuckets are the request duration histogram's upper bounds in
// seconds: from half a millisecond (a cached denial) to a minute (the
// default backend timeout).
var DurationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

func counterVec(name string) *prometheus.CounterVec {
	s := spec(name)
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: s.Name, Help: s.Help}, s.Labels)
}

func gauge(name string) prometheus.Gauge {
	s := spec(name)
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: s.Name, Help: s.Help})
}

// New creates the gateway's metrics and registers them with reg. Every
// labelled series whose label values are known in advance (refusal gates,
// handshake failure reasons, reload results) is created at zero, so that
// rate() and alerts see it before the first event.
func New(reg prometheus.Registerer) *Metrics {
	s := spec(nameDuration)
	m := &Metrics{
		requests:      counterVec(nameRequests),
		duration:      prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: s.Name, Help: s.Help, Buckets: DurationBuckets}, s.Labels),
		bytesIn:       counterVec(nameBytesIn),
		bytesOut:      counterVec(nameBytesOut),
		inFlight:      gauge(nameInFlight),
		backendErrors: counterVec(nameBackendErrors),
		denials:       counterVec(nameDenials),
		handshakes:    counterVec(nameHandshakes),
		reloadOK:      gauge(nameReloadOK),
		reloadTime:    gauge(nameReloadTime),
		routes:        map[string]*Route{},
		inv:           newInventoryCollector(),
	}
	mis := counterVec(nameMisdirected)
	for i := range m.misdirected {
		m.misdirected[i] = mis.WithLabelValues(Misdirected(i).String())
	}
	ref := counterVec(nameRefused)
	for i := range m.refused {
		m.refused[i] = ref.WithLabelValues(Gate(i).String())
	}
	hsf := counterVec(nameHandshakeFailures)
	for i := range m.hsFailures {
		m.hsFailures[i] = hsf.WithLabelValues(HandshakeFailure(i).String())
	}
	rl := counterVec(nameReloads)
	m.reloads[0] = rl.WithLabelValues("failure")
	m.reloads[1] = rl.WithLabelValues("success")
	m.reloadOK.Set(1)
	m.noRoute = m.Route(NoRoute)
	reg.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.inFlight, m.backendErrors,
		m.denials, mis, ref, m.handshakes, hsf, rl, m.reloadOK, m.reloadTime, m.inv)
	return m
}

// RegisterRuntime registers the Go runtime and process collectors.
func RegisterRuntime(reg prometheus.Registerer) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// Handler serves g in the Prometheus exposition format.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Begin counts a request in flight; call End when its response is done.
// Both are one atomic add.
func (m *Metrics) Begin() { m.inFlight.Inc() }

// End ends what Begin counted.
func (m *Metrics) End() { m.inFlight.Dec() }

// Refused counts a 4xx given by a gate before authorization.
func (m *Metrics) Refused(g Gate) { m.refused[g].Inc() }

// Misdirected counts a 421 answer.
func (m *Metrics) Misdirected(r Misdirected) { m.misdirected[r].Inc() }

// HandshakeFailed counts a handshake refused by the client certificate
// checks.
func (m *Metrics) HandshakeFailed(r HandshakeFailure) { m.hsFailures[r].Inc() }

// Handshake counts a completed handshake. Labels are resolved once per
// distinct combination (there are a few dozen at most).
func (m *Metrics) Handshake(version, cipher uint16, group tls.CurveID, resumed bool) {
	key := uint64(version)<<48 | uint64(cipher)<<32 | uint64(group)<<8
	if resumed {
		key |= 1
	}
	if c, ok := m.hs.Load(key); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c := m.handshakes.WithLabelValues(versionName(version), tls.CipherSuiteName(cipher), groupName(group), strconv.FormatBool(resumed))
	m.hs.Store(key, c)
	c.Inc()
}

func versionName(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return "other"
}

func groupName(g tls.CurveID) string {
	if g == 0 {
		return "none" // TLS 1.2 resumption: no key exchange
	}
	return g.String()
}

// ReloadSucceeded records a configuration loaded at t (also call it once
// at startup, so that the timestamp is never zero).
func (m *Metrics) ReloadSucceeded(t time.Time) {
	m.reloads[1].Inc()
	m.reloadOK.Set(1)
	m.reloadTime.Set(float64(t.UnixNano()) / 1e9)
}

// Started records the configuration loaded at startup at t: like
// ReloadSucceeded, without counting a reload.
func (m *Metrics) Started(t time.Time) {
	m.reloadOK.Set(1)
	m.reloadTime.Set(float64(t.UnixNano()) / 1e9)
}

// ReloadFailed records a refused configuration; the last good one keeps
// serving.
func (m *Metrics) ReloadFailed() {
	m.reloads[0].Inc()
	m.reloadOK.Set(0)
}

// SetInventory installs the function a scrape calls for the certificates,
// CRLs and staples in force. If never called, none are exported.
func (m *Metrics) SetInventory(f func() Inventory) { m.inv.set(f) }
