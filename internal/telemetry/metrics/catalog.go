package metrics

import "sort"

// Spec describes one exported metric family. The catalog is the single
// list the collectors are built from, the README's metric list is checked
// against, and the dashboard and alerting rules are validated with.
type Spec struct {
	Name   string
	Type   string // counter, gauge or histogram
	Help   string
	Labels []string
	// Exporter is "gateway" (gatehouse serve) or "ca" (gatehouse ca serve);
	// "both" for the certificate expiry gauge.
	Exporter string
}

// Metric names, in one place.
const (
	nameRequests          = "gatehouse_requests_total"
	nameDuration          = "gatehouse_request_duration_seconds"
	nameBytesIn           = "gatehouse_request_bytes_total"
	nameBytesOut          = "gatehouse_response_bytes_total"
	nameInFlight          = "gatehouse_requests_in_flight"
	nameBackendErrors     = "gatehouse_backend_errors_total"
	nameDenials           = "gatehouse_authz_denials_total"
	nameMisdirected       = "gatehouse_misdirected_requests_total"
	nameRefused           = "gatehouse_requests_refused_total"
	nameHandshakes        = "gatehouse_tls_handshakes_total"
	nameHandshakeFailures = "gatehouse_tls_handshake_failures_total"
	nameReloads           = "gatehouse_config_reloads_total"
	nameReloadOK          = "gatehouse_config_last_reload_successful"
	nameReloadTime        = "gatehouse_config_last_reload_success_timestamp_seconds"
	nameCertNotAfter      = "gatehouse_certificate_not_after_timestamp_seconds"
	nameCertNotBefore     = "gatehouse_certificate_not_before_timestamp_seconds"
	nameCRLThis           = "gatehouse_crl_this_update_timestamp_seconds"
	nameCRLNext           = "gatehouse_crl_next_update_timestamp_seconds"
	nameCRLNumber         = "gatehouse_crl_number"
	nameCRLRevoked        = "gatehouse_crl_revoked_certificates"
	nameCRLFetchOK        = "gatehouse_crl_last_fetch_success_timestamp_seconds"
	nameCRLFetchErrors    = "gatehouse_crl_fetch_errors_total"
	nameStapleNext        = "gatehouse_ocsp_staple_next_update_timestamp_seconds"
	nameStapleAge         = "gatehouse_ocsp_staple_age_seconds"
	nameStaplePresent     = "gatehouse_ocsp_staple_present"
	nameCACerts           = "gatehouse_ca_certificates"
	nameCASoonest         = "gatehouse_ca_soonest_expiry_timestamp_seconds"
	nameCAExpiring        = "gatehouse_ca_certificate_not_after_timestamp_seconds"
	nameCACRLNext         = "gatehouse_ca_crl_next_update_timestamp_seconds"
	nameCACRLNumber       = "gatehouse_ca_crl_number"
)

var certLabels = []string{"role", "subject_cn", "serial", "issuer_cn", "file"}

// Catalog lists every metric family gatehouse itself exports (the Go and
// process collectors add go_* and process_*).
var Catalog = []Spec{
	{nameRequests, "counter", "Requests answered, by route, status code and decision.", []string{"route", "code", "decision"}, "gateway"},
	{nameDuration, "histogram", "Time from the request's arrival to the end of its response, by route.", []string{"route"}, "gateway"},
	{nameBytesIn, "counter", "Request body bytes received, by route.", []string{"route"}, "gateway"},
	{nameBytesOut, "counter", "Response body bytes sent, by route.", []string{"route"}, "gateway"},
	{nameInFlight, "gauge", "Requests being served now.", nil, "gateway"},
	{nameBackendErrors, "counter", "Backend failures (kind error, timeout or circuit_open), by route.", []string{"route", "kind"}, "gateway"},
	{nameDenials, "counter", "Requests refused by a route's client certificate requirement or allow rules, by route and reason.", []string{"route", "reason"}, "gateway"},
	{nameMisdirected, "counter", "421 Misdirected Request answers: the Host names another virtual host than the TLS SNI.", []string{"reason"}, "gateway"},
	{nameRefused, "counter", "Requests refused with a 4xx before authorization, by gate (path, framing, size, header_size, method, route, upgrade, validation).", []string{"gate"}, "gateway"},
	{nameHandshakes, "counter", "Completed TLS handshakes, by version, cipher suite, key exchange group and resumption.", []string{"version", "cipher", "group", "resumed"}, "gateway"},
	{nameHandshakeFailures, "counter", "TLS handshakes refused by client certificate checks, by reason (with client_auth.refusal: http, the certificates refused and answered in HTTP).", []string{"reason"}, "gateway"},
	{nameReloads, "counter", "Configuration reloads, by result (success or failure).", []string{"result"}, "gateway"},
	{nameReloadOK, "gauge", "1 if the last configuration reload succeeded, 0 if it was refused.", nil, "gateway"},
	{nameReloadTime, "gauge", "When the configuration in force was loaded (start or last successful reload).", nil, "gateway"},
	{nameCertNotAfter, "gauge", "Expiry of every certificate served, trusted or used (role: server, server_chain, client_ca, upstream_client, upstream_ca, ca_root, ca_intermediate).", certLabels, "both"},
	{nameCertNotBefore, "gauge", "Start of validity of the same certificates.", certLabels, "both"},
	{nameCRLThis, "gauge", "thisUpdate of the CRL held for each source.", []string{"source", "issuer_cn"}, "gateway"},
	{nameCRLNext, "gauge", "nextUpdate of the CRL held for each source; past it, the unavailable policy applies.", []string{"source", "issuer_cn"}, "gateway"},
	{nameCRLNumber, "gauge", "CRL number of the CRL held for each source (-1 when it has none).", []string{"source", "issuer_cn"}, "gateway"},
	{nameCRLRevoked, "gauge", "Revoked serials listed in the CRL held for each source.", []string{"source", "issuer_cn"}, "gateway"},
	{nameCRLFetchOK, "gauge", "When each CRL source was last read successfully (0: never).", []string{"source"}, "gateway"},
	{nameCRLFetchErrors, "counter", "Failed reads of each CRL source.", []string{"source"}, "gateway"},
	{nameStapleNext, "gauge", "nextUpdate of the OCSP response stapled to each served certificate.", []string{"subject_cn", "serial"}, "gateway"},
	{nameStapleAge, "gauge", "Seconds since thisUpdate of the OCSP response stapled to each served certificate.", []string{"subject_cn", "serial"}, "gateway"},
	{nameStaplePresent, "gauge", "1 if a served certificate that names an OCSP responder has a current staple, else 0.", []string{"subject_cn", "serial"}, "gateway"},
	{nameCACerts, "gauge", "Certificates in the CA inventory, by profile and status (valid, revoked, expired).", []string{"profile", "status"}, "ca"},
	{nameCASoonest, "gauge", "The soonest expiry among the valid certificates of each profile.", []string{"profile"}, "ca"},
	{nameCAExpiring, "gauge", "Expiry of each valid certificate within the warning window (the soonest 100).", []string{"profile", "subject_cn", "serial"}, "ca"},
	{nameCACRLNext, "gauge", "nextUpdate of the CRL the CA publishes.", nil, "ca"},
	{nameCACRLNumber, "gauge", "Number of the CRL the CA publishes.", nil, "ca"},
}

var catalogByName = func() map[string]*Spec {
	m := make(map[string]*Spec, len(Catalog))
	for i := range Catalog {
		m[Catalog[i].Name] = &Catalog[i]
	}
	return m
}()

func spec(name string) *Spec {
	s := catalogByName[name]
	if s == nil {
		panic("metrics: " + name + " is not in the catalog")
	}
	return s
}

// Names returns the name of every series name a scrape can return for
// gatehouse's own metrics: the family names, with _bucket, _sum and _count
// for histograms. Sorted.
func Names() []string {
	var out []string
	for _, s := range Catalog {
		if s.Type == "histogram" {
			out = append(out, s.Name+"_bucket", s.Name+"_sum", s.Name+"_count")
			continue
		}
		out = append(out, s.Name)
	}
	sort.Strings(out)
	return out
}
