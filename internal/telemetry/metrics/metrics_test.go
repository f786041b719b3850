package metrics

import (
	"crypto/tls"
	"math/big"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// series counts the series of every family in g whose name starts with
// prefix.
func series(t testing.TB, g prometheus.Gatherer, names ...string) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if slices.Contains(names, mf.GetName()) {
			n += len(mf.GetMetric())
		}
	}
	return n
}

func family(t testing.TB, g prometheus.Gatherer, name string) *dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf
		}
	}
	return nil
}

func TestRequestCounting(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	r := m.Route("orders")
	m.Begin()
	if got := testutil.ToFloat64(m.inFlight); got != 1 {
		t.Errorf("in flight = %v, want 1", got)
	}
	r.Done(200, Allowed, 3*time.Millisecond, 10, 20)
	m.End()
	r.Done(403, Denied, time.Millisecond, 0, 5)
	r.Denied(DenyNoRuleMatched)
	r.Done(502, BackendError, time.Second, 0, 0)
	r.BackendFailed(BackendFailed)
	r.Done(999, Allowed, time.Second, 0, 0)
	m.Refused(GateFraming)
	m.Misdirected(MisdirectedSNIHost)
	for _, c := range []struct {
		c    prometheus.Collector
		want float64
	}{
		{m.requests.WithLabelValues("orders", "200", "allowed"), 1},
		{m.requests.WithLabelValues("orders", "403", "denied"), 1},
		{m.requests.WithLabelValues("orders", "502", "backend_error"), 1},
		{m.requests.WithLabelValues("orders", "other", "allowed"), 1},
		{m.denials.WithLabelValues("orders", "no_rule_matched"), 1},
		{m.backendErrors.WithLabelValues("orders", "error"), 1},
		{m.backendErrors.WithLabelValues("orders", "timeout"), 0},
		{m.bytesIn.WithLabelValues("orders"), 10},
		{m.bytesOut.WithLabelValues("orders"), 25},
		{m.refused[GateFraming], 1},
		{m.misdirected[MisdirectedSNIHost], 1},
		{m.inFlight, 0},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%v = %v, want %v", c.c, got, c.want)
		}
	}
	if m.Route("orders") != r {
		t.Error("Route returned a new *Route for a known name")
	}
	if n := testutil.CollectAndCount(m.duration); n != 2 {
		t.Errorf("duration series = %d, want 2 (orders and %s)", n, NoRoute)
	}
}

func TestHandshakes(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	for range 3 {
		m.Handshake(tls.VersionTLS13, tls.TLS_AES_128_GCM_SHA256, tls.X25519MLKEM768, false)
	}
	m.Handshake(tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, 0, true)
	m.HandshakeFailed(FailRevoked)
	if got := testutil.ToFloat64(m.handshakes.WithLabelValues("1.3", "TLS_AES_128_GCM_SHA256", "X25519MLKEM768", "false")); got != 3 {
		t.Errorf("TLS 1.3 handshakes = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.handshakes.WithLabelValues("1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "none", "true")); got != 1 {
		t.Errorf("TLS 1.2 resumptions = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.hsFailures[FailRevoked]); got != 1 {
		t.Errorf("revoked failures = %v", got)
	}
	// Every failure reason exists at zero before the first failure.
	if n := series(t, reg, nameHandshakeFailures); n != int(numHandshakeFailures) {
		t.Errorf("handshake failure series = %d, want %d", n, numHandshakeFailures)
	}
}

// TestCardinality: 10,000 requests from 1,000 different client
// certificates add no series. The request API takes no identity at all,
// so the only way a client could add series is through the status code,
// which is bounded (100-599 and "other").
func TestCardinality(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	routes := []*Route{m.Route("orders"), m.Route("health"), m.Route(NoRoute)}
	// Warm up: each route and decision once, as a short real workload would.
	for _, r := range routes {
		r.Done(200, Allowed, time.Millisecond, 1, 1)
		r.Done(403, Denied, time.Millisecond, 1, 1)
	}
	requestFamilies := []string{nameRequests, nameDuration, nameBytesIn, nameBytesOut, nameInFlight, nameBackendErrors, nameDenials, nameMisdirected, nameRefused}
	before := series(t, reg, requestFamilies...)
	for i := range 10_000 {
		client := i % 1000 // the client certificate: it has no way in
		_ = client
		r := routes[i%2]
		m.Begin()
		if i%3 == 0 {
			r.Denied(DenyNoRuleMatched)
			r.Done(403, Denied, time.Duration(i)*time.Microsecond, 0, 30)
		} else {
			r.Done(200, Allowed, time.Duration(i)*time.Microsecond, int64(i), int64(i))
		}
		m.End()
	}
	if after := series(t, reg, requestFamilies...); after != before {
		t.Errorf("request series grew from %d to %d over 10,000 requests from 1,000 clients", before, after)
	}
}

func TestInventory(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	cert := Certificate{Role: RoleServer, File: "api.pem", SubjectCN: "api", Serial: "1f", IssuerCN: "CA",
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour)}
	m.SetInventory(func() Inventory {
		return Inventory{
			Now:          now,
			Certificates: []Certificate{cert, cert}, // a duplicate is one series
			CRLs: []CRL{
				{Source: "ca.crl", Loaded: true, IssuerCN: "CA", Number: big.NewInt(7), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(time.Hour), Revoked: 2, LastSuccess: now, FetchErrors: 3},
				{Source: "http://127.0.0.1:1/crl"},
			},
			Staples: []Staple{{SubjectCN: "api", Serial: "1f", Present: true, ThisUpdate: now.Add(-90 * time.Second), NextUpdate: now.Add(time.Hour)}},
		}
	})
	want := `
# HELP gatehouse_certificate_not_after_timestamp_seconds ` + spec(nameCertNotAfter).Help + `
# TYPE gatehouse_certificate_not_after_timestamp_seconds gauge
gatehouse_certificate_not_after_timestamp_seconds{file="api.pem",issuer_cn="CA",role="server",serial="1f",subject_cn="api"} 1.796256e+09
# HELP gatehouse_crl_number ` + spec(nameCRLNumber).Help + `
# TYPE gatehouse_crl_number gauge
gatehouse_crl_number{issuer_cn="CA",source="ca.crl"} 7
# HELP gatehouse_crl_fetch_errors_total ` + spec(nameCRLFetchErrors).Help + `
# TYPE gatehouse_crl_fetch_errors_total counter
gatehouse_crl_fetch_errors_total{source="ca.crl"} 3
gatehouse_crl_fetch_errors_total{source="http://127.0.0.1:1/crl"} 0
# HELP gatehouse_ocsp_staple_age_seconds ` + spec(nameStapleAge).Help + `
# TYPE gatehouse_ocsp_staple_age_seconds gauge
gatehouse_ocsp_staple_age_seconds{serial="1f",subject_cn="api"} 90
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), nameCertNotAfter, nameCRLNumber, nameCRLFetchErrors, nameStapleAge); err != nil {
		t.Error(err)
	}
	// An unloaded source has fetch metrics but no CRL fields.
	if n := series(t, reg, nameCRLNext); n != 1 {
		t.Errorf("crl next update series = %d, want 1", n)
	}
}

func TestReload(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	t0 := time.Unix(1000, 0)
	m.Started(t0)
	m.ReloadFailed()
	if testutil.ToFloat64(m.reloadOK) != 0 || testutil.ToFloat64(m.reloads[0]) != 1 || testutil.ToFloat64(m.reloadTime) != 1000 {
		t.Error("a failed reload is not recorded, or moved the last good timestamp")
	}
	m.ReloadSucceeded(time.Unix(2000, 0))
	if testutil.ToFloat64(m.reloadOK) != 1 || testutil.ToFloat64(m.reloads[1]) != 1 || testutil.ToFloat64(m.reloadTime) != 2000 {
		t.Error("a successful reload is not recorded")
	}
}

// TestCatalogMatchesRegistry: every family a populated gateway registry
// gathers is in the catalog with its type and labels, and every gateway
// family of the catalog is gathered.
func TestCatalogMatchesRegistry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	RegisterRuntime(reg)
	r := m.Route("a")
	r.Done(200, Allowed, time.Millisecond, 1, 1)
	m.Begin()
	m.Handshake(tls.VersionTLS13, tls.TLS_AES_128_GCM_SHA256, tls.X25519, false)
	now := time.Now()
	m.SetInventory(func() Inventory {
		return Inventory{
			Certificates: []Certificate{{Role: RoleServer, NotAfter: now}},
			CRLs:         []CRL{{Source: "x", Loaded: true}},
			Staples:      []Staple{{SubjectCN: "x", Present: true}},
		}
	})
	caReg := prometheus.NewPedanticRegistry()
	inv := NewCAInventory()
	inv.Set(CASnapshot{Counts: []CACount{{Profile: "client", Status: "valid", Count: 1}}, Soonest: map[string]time.Time{"client": now},
		Expiring: []CAExpiring{{Profile: "client", SubjectCN: "x", Serial: "1", NotAfter: now}}, CRLNumber: 1, CRLNextUpdate: now,
		Certificates: []Certificate{{Role: RoleCARoot, NotAfter: now}}})
	caReg.MustRegister(inv)
	mfs, err := prometheus.Gatherers{reg, caReg}.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		name := mf.GetName()
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue
		}
		got[name] = true
		s := catalogByName[name]
		if s == nil {
			t.Errorf("%s is gathered but not in the catalog", name)
			continue
		}
		if typ := strings.ToLower(mf.GetType().String()); typ != s.Type {
			t.Errorf("%s: type %s, catalog says %s", name, typ, s.Type)
		}
		for _, mt := range mf.GetMetric() {
			var labels []string
			for _, lp := range mt.GetLabel() {
				labels = append(labels, lp.GetName())
			}
			want := slices.Clone(s.Labels)
			slices.Sort(want)
			if !slices.Equal(labels, want) {
				t.Errorf("%s: labels %v, catalog says %v", name, labels, want)
			}
		}
		if !strings.HasSuffix(name, "_total") && s.Type == "counter" {
			t.Errorf("%s: a counter's name must end in _total", name)
		}
	}
	for _, s := range Catalog {
		if !got[s.Name] {
			t.Errorf("%s is in the catalog but not gathered", s.Name)
		}
	}
	if !got[nameCertNotAfter] {
		t.Fatal("no certificate gauge")
	}
}

func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg).Route("a").Done(200, Allowed, time.Millisecond, 0, 0)
	rec := httptest.NewRecorder()
	Handler(reg).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `gatehouse_requests_total{code="200",decision="allowed",route="a"} 1`) {
		t.Errorf("exposition lacks the request:\n%s", rec.Body)
	}
}

// BenchmarkRequest is what metrics add to one request: in-flight up and
// down, the request counter, the duration histogram and two byte
// counters, on a route resolved at provisioning. The budget is 1 µs.
func BenchmarkRequest(b *testing.B) {
	m := New(prometheus.NewRegistry())
	r := m.Route("orders")
	b.ReportAllocs()
	for b.Loop() {
		m.Begin()
		r.Done(200, Allowed, 1500*time.Microsecond, 512, 2048)
		m.End()
	}
}

// BenchmarkRequestParallel is the same from every core at once, where the
// shared counters' cache lines are contended.
func BenchmarkRequestParallel(b *testing.B) {
	m := New(prometheus.NewRegistry())
	r := m.Route("orders")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Begin()
			r.Done(200, Allowed, 1500*time.Microsecond, 512, 2048)
			m.End()
		}
	})
}

// BenchmarkHandshake is what metrics add to one completed handshake.
func BenchmarkHandshake(b *testing.B) {
	m := New(prometheus.NewRegistry())
	b.ReportAllocs()
	for b.Loop() {
		m.Handshake(tls.VersionTLS13, tls.TLS_AES_128_GCM_SHA256, tls.X25519MLKEM768, true)
	}
}

func TestSummarize(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	var recs []CARecord
	for i := range 300 {
		recs = append(recs, CARecord{Profile: "client", SubjectCN: "c", Serial: big.NewInt(int64(i)).Text(16), NotAfter: now.Add(time.Duration(i+1) * time.Hour)})
	}
	recs = append(recs,
		CARecord{Profile: "server", Serial: "a1", NotAfter: now.Add(-day)},
		CARecord{Profile: "server", Serial: "a2", NotAfter: now.Add(90 * day)},
		CARecord{Profile: "server", Serial: "a3", NotAfter: now.Add(2 * day), Revoked: true},
		CARecord{Profile: "ocsp-signer", Serial: "b1", NotAfter: now.Add(-time.Minute), SelfRenewing: true},
		CARecord{Profile: "ocsp-signer", Serial: "b2", NotAfter: now.Add(time.Minute), SelfRenewing: true})
	s := Summarize(recs, now, 30*day, DefaultExpiringLimit)
	want := []CACount{{"client", "valid", 300}, {"ocsp-signer", "expired", 1}, {"ocsp-signer", "valid", 1}, {"server", "expired", 1}, {"server", "revoked", 1}, {"server", "valid", 1}}
	if !slices.Equal(s.Counts, want) {
		t.Errorf("counts = %v, want %v", s.Counts, want)
	}
	if len(s.Expiring) != DefaultExpiringLimit || s.Expiring[0].Serial != "0" || !s.Expiring[99].NotAfter.Equal(now.Add(100*time.Hour)) {
		t.Errorf("expiring: %d, first %v", len(s.Expiring), s.Expiring[0])
	}
	if _, ok := s.Soonest["ocsp-signer"]; ok {
		t.Error("a self-renewing certificate is reported")
	}
	if !s.Soonest["server"].Equal(now.Add(90*day)) || !s.Soonest["client"].Equal(now.Add(time.Hour)) {
		t.Errorf("soonest = %v", s.Soonest)
	}
	reg := prometheus.NewPedanticRegistry()
	inv := NewCAInventory()
	reg.MustRegister(inv)
	inv.Set(s)
	if n := series(t, reg, nameCAExpiring); n != DefaultExpiringLimit {
		t.Errorf("per-certificate series = %d, want the bound %d", n, DefaultExpiringLimit)
	}
}

func TestObserve(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	r := m.Route("orders")
	m.Observe(r, 200, OK, time.Millisecond, 1, 2)
	m.Observe(r, 403, DeniedNoRule, time.Millisecond, 0, 0)
	m.Observe(r, 504, FailedTimeout, time.Second, 0, 0)
	m.Observe(nil, 421, MisdirectedSNIHostOutcome, time.Millisecond, 0, 0)
	m.Observe(nil, 400, RefusedPath, time.Millisecond, 0, 0)
	m.Observe(r, 413, RefusedSize, time.Millisecond, 0, 0)
	m.Observe(nil, 431, ByStatus, time.Millisecond, 0, 0) // an engine's untagged refusal
	for _, c := range []struct {
		c    prometheus.Collector
		want float64
	}{
		{m.requests.WithLabelValues("orders", "200", "allowed"), 1},
		{m.requests.WithLabelValues("orders", "403", "denied"), 1},
		{m.requests.WithLabelValues("orders", "504", "backend_error"), 1},
		{m.requests.WithLabelValues("orders", "413", "refused"), 1},
		{m.requests.WithLabelValues(NoRoute, "421", "refused"), 1},
		{m.requests.WithLabelValues(NoRoute, "400", "refused"), 1},
		{m.denials.WithLabelValues("orders", "no_rule_matched"), 1},
		{m.backendErrors.WithLabelValues("orders", "timeout"), 1},
		{m.misdirected[MisdirectedSNIHost], 1},
		{m.refused[GatePath], 1},
		{m.refused[GateSize], 1},
		{m.refused[GateHeaderSize], 1},
		{m.requests.WithLabelValues(NoRoute, "431", "refused"), 1},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%v = %v, want %v", c.c, got, c.want)
		}
	}
	// Every outcome maps to a decision and at most one secondary counter.
	for o := range numOutcomes {
		info := outcomes[o]
		n := 0
		for _, v := range []int8{info.gate, info.mis, info.deny, info.backend} {
			if v >= 0 {
				n++
			}
		}
		if o == ByStatus {
			continue
		}
		if n > 1 || (o != OK && o != InternalError && o != ClientCanceled && n == 0) {
			t.Errorf("outcome %d: %+v", o, info)
		}
	}
}

// BenchmarkObserve is the pipeline's per-request cost: Begin, Observe,
// End. The budget is 1 µs.
func BenchmarkObserve(b *testing.B) {
	m := New(prometheus.NewRegistry())
	r := m.Route("orders")
	b.ReportAllocs()
	for b.Loop() {
		m.Begin()
		m.Observe(r, 200, OK, 1500*time.Microsecond, 512, 2048)
		m.End()
	}
}
