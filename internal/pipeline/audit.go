package pipeline

import "github.com/gatehouse/gatehouse/internal/telemetry"

// Finish completes the request's audit record and writes it, once: status
// is what the client got (0: nothing was sent), bytesOut the response body
// bytes written, failure why the response was cut short ("" for none).
// Engines call it when the response body is done, not when the handler
// returns, so streamed bodies and tunnels are counted whole.
func (ex *Exchange) Finish(status int, bytesOut int64, failure string) {
	if ex.finished {
		return
	}
	ex.finished = true
	ex.ticket.Done() // the request no longer holds in-flight slots
	r := &ex.rec
	r.Time = ex.start
	r.Event = "request"
	if ex.upgrade != "" && status == 101 {
		r.Event = "tunnel" // its lifetime and bytes both ways
	}
	r.RequestID = ex.requestID
	r.Remote = ex.conn.Remote
	r.Method = ex.method
	r.Host = ex.authority
	r.Proto = ex.proto
	if status != 0 || r.Status == 0 {
		r.Status = status
	}
	r.BytesIn = ex.BytesIn()
	r.BytesOut = bytesOut
	r.Duration = ex.p.now().Sub(ex.start)
	if failure != "" {
		r.Decision = "error"
		if r.Reason != "" {
			r.Reason += "; "
		}
		r.Reason += failure
	}
	if r.Decision == "" {
		r.Decision = "allow"
	}
	if v := ex.v; v != nil && v.ID != nil {
		r.Subject, r.Serial, r.Issuer = v.subject, v.serial, v.issuer
		r.SPIFFE, r.Fingerprint, r.SANs = v.spiffe, v.fingerprint, v.sans
	}
	ex.count(failure)
	for _, o := range ex.p.Observers {
		o.Observe(ex, r)
	}
	ex.p.Audit.Write(r)
}

// Record returns the audit record as it stands (for tests and observers).
func (ex *Exchange) Record() *telemetry.AuditRecord { return &ex.rec }

// Event writes a record that belongs to no request, such as a refused
// handshake.
func (p *Pipeline) Event(r *telemetry.AuditRecord) { p.Audit.Write(r) }

// Note adds to the record's reason without changing its decision (how a
// tunnel ended).
func (ex *Exchange) Note(s string) {
	if ex.rec.Reason != "" {
		ex.rec.Reason += "; "
	}
	ex.rec.Reason += s
}
