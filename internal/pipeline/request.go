package pipeline

// Request is an engine's read-only view of one request. Strings returned
// may alias the engine's buffers: they are valid until the exchange is
// finished, and the pipeline copies what it keeps longer.
type Request interface {
	// Method is the request method as sent.
	Method() string
	// Authority is the Host header (HTTP/1.1) or :authority (HTTP/2) as
	// sent, "" when absent.
	Authority() string
	// Target is the request target as sent, query included: origin form
	// ("/a?b"), asterisk form ("*") or absolute form ("https://h/a").
	Target() string
	// Proto is "HTTP/1.1", "HTTP/1.0" or "HTTP/2.0".
	Proto() string
	// ContentLength is the declared body length, 0 for none, -1 when the
	// body is chunked or its length is otherwise unknown.
	ContentLength() int64
	// VisitHeaders calls v.VisitHeader for every header field as received
	// (name spelling preserved where the engine keeps it), until it
	// returns false. Pseudo-headers, Host and framing headers need not be
	// included.
	VisitHeaders(v HeaderVisitor)
}

// HeaderVisitor receives header fields (an interface, not a func, so that
// visiting allocates nothing).
type HeaderVisitor interface {
	VisitHeader(name, value string) bool
}

// HeaderSink receives the headers of the request sent to the backend.
type HeaderSink interface {
	AddHeader(name, value string)
}
