package pipeline

import (
	"errors"
	"io"
	"time"
)

// ErrBodyTooLarge is returned by the body reader once the client has sent
// more than the route's max_body.
var ErrBodyTooLarge = errors.New("request body larger than max_body")

// ErrBodyTooSlow is returned by the body reader when the client sends its
// body slower than limits.min_body_rate (a slowloris body holding a
// backend connection).
var ErrBodyTooSlow = errors.New("request body arrived slower than limits.min_body_rate")

// ClientBodyError is a failure reading the client's body (malformed
// chunked encoding, connection closed mid-body): the client's fault,
// answered 400, never blamed on the backend.
type ClientBodyError struct{ Err error }

func (e *ClientBodyError) Error() string { return "client body: " + e.Err.Error() }
func (e *ClientBodyError) Unwrap() error { return e.Err }

type limitedBody struct {
	r     io.Reader
	left  int64
	n     int64
	err   error
	limit int64

	now   func() time.Time
	start time.Time
	grace time.Duration
	rate  int64
}

// Body wraps the client's body stream: it counts bytes in for the audit
// record, fails with ErrBodyTooLarge past the route's max_body (enforced
// while streaming, whatever Content-Length said), and wraps read errors
// in ClientBodyError.
func (ex *Exchange) Body(r io.Reader) io.Reader {
	max := int64(1<<63 - 1)
	if ex.route != nil {
		max = ex.route.MaxBody
	}
	ex.body = &limitedBody{r: r, left: max, limit: max}
	if pol := ex.policy; pol != nil && pol.MinBodyRate > 0 && pol.BodyIdle > 0 {
		b := ex.body
		b.now, b.grace, b.rate = ex.p.now, pol.BodyIdle, pol.MinBodyRate
		b.start = b.now()
	}
	return ex.body
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	if int64(n) > b.left {
		n = int(b.left)
		b.err = ErrBodyTooLarge
		err = b.err
	}
	b.left -= int64(n)
	b.n += int64(n)
	if b.rate > 0 && err == nil {
		if d := b.now().Sub(b.start); d > b.grace && b.n < int64(float64(b.rate)*d.Seconds()) {
			b.err = &ClientBodyError{Err: ErrBodyTooSlow}
			return n, b.err
		}
	}
	if err != nil && err != io.EOF && err != ErrBodyTooLarge {
		err = &ClientBodyError{Err: err}
		b.err = err
	}
	return n, err
}

// BytesIn returns the body bytes read so far.
func (ex *Exchange) BytesIn() int64 {
	if ex.body == nil {
		return 0
	}
	return ex.body.n
}

// AddBytesIn counts body bytes an engine read without Body (tunnels).
func (ex *Exchange) AddBytesIn(n int64) {
	if ex.body == nil {
		ex.body = &limitedBody{}
	}
	ex.body.n += n
}

// BufferedBody accounts for a body the engine read whole (n bytes): it
// counts them in and returns ErrBodyTooLarge past max_body.
func (ex *Exchange) BufferedBody(n int64) error {
	ex.AddBytesIn(n)
	if ex.route != nil && n > ex.route.MaxBody {
		return ErrBodyTooLarge
	}
	return nil
}
