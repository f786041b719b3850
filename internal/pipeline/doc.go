// Package pipeline holds every decision of the request path, once, for
// every HTTP engine: an engine parses, frames and writes; the pipeline
// decides what is answered and what the backend receives.
//
// # How an engine uses it
//
//	ex := p.Begin(conn, view)           // view: the engine's Request
//	if rf := ex.Decide(ctx, view); rf != nil {
//	    status, body := rf.Render(ex.HSTS(), setHeader) // write it
//	    ex.Finish(status, len(body), "")
//	} else {
//	    ex.WriteHeaders(view, backendHeaders)  // hygiene + identity
//	    body := ex.Body(clientBody)            // max_body while streaming
//	    ... send to ex.Route().Upstream, relay the answer
//	    (RelayResponseHeader, HSTS ex.HSTS(), UpstreamError on failure)
//	    ex.Finish(status, bytesOut, failure)   // when the body is done
//	}
//	ex.Release()
//
// # The stages, in order (Exchange.Decide)
//
//  1. Connection currency: after a reload the client chain is verified
//     again under the policy in force; expiry during the connection;
//     revocation on every request (403).
//  2. Request target: origin, absolute (its authority must equal Host) or
//     asterisk form (OPTIONS * is answered by gatehouse, never forwarded).
//  3. Authority: parsed strictly, a host and an optional numeric port
//     (400); SNI/Host virtual host check, including the no-SNI case (421).
//  4. Path: normalized once by sanitize.Path (400); that string is
//     matched and forwarded.
//  5. Route by host and path (404); client certificate requirement and
//     allow rules (403); methods (405 with Allow); declared body size
//     (413).
//  6. Headers: Connection-nominated names, Upgrade (only a protocol the
//     route names; never h2c).
//  7. Pipeline.Stages, in order: the hook for rate limits (429 with a
//     Limit and LimitKey on the record, via Exchange.SetLimit) and request
//     validation (400 application/problem+json through Refusal.Body). A
//     stage sees the route, the identity (Exchange.Identity), the
//     connection (remote IP) and the request view.
//
// Then the engine forwards; response-side hygiene (RelayResponseHeader,
// HSTS on the final response) and error mapping (UpstreamError: 413, 400
// for a client's malformed body, 499, 502, 503, 504) are here too.
//
// # Audit and metrics
//
// Every request gets exactly one telemetry.AuditRecord, refused or not,
// written by Exchange.Finish when the response body is done (so streamed
// bodies and tunnels are counted whole). Pipeline.Observers see each
// record first: the hook for metrics by route, status, decision and
// reason, and duration. Identity strings (subject, serial as openssl
// prints it, issuer, SPIFFE ID, SANs) are rendered once per verified
// connection (Verification), not per request.
package pipeline
