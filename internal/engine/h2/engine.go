package h2

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// Options configure the engine.
type Options struct {
	// ReadHeaderTimeout bounds reading a request's headers. Default 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a connection without streams this long. Default 2m.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header block. Default 64 KiB.
	MaxHeaderBytes int
	// MaxConcurrentStreams bounds the streams per connection. Default 100.
	MaxConcurrentStreams uint32
	// BackendConnsPerClient bounds the backend requests one connection
	// has in flight at once; further streams wait for one to finish.
	// Default 16.
	BackendConnsPerClient int
	// BodyIdleTimeout bounds each read of a stream's body when the policy
	// sets none. Default ReadHeaderTimeout.
	BodyIdleTimeout time.Duration
	// Log receives operational messages. If nil, slog.Default is used.
	Log *slog.Logger
}

// Engine serves HTTP/2 on connections whose ALPN chose "h2", with Go's
// HTTP/2 server, through the pipeline and the same upstream client as
// HTTP/1.1.
type Engine struct {
	p   *pipeline.Pipeline
	hs  *http.Server // kept so that Shutdown sends GOAWAY (ConfigureServer)
	h2  *http2.Server
	log *slog.Logger
	wg  sync.WaitGroup

	maxHeader int
	opts      Options
}

// connState is what every stream of one connection shares.
type connState struct {
	pc *pipeline.Conn
	co *coalescer
	// backends bounds the connection's backend requests in flight.
	backends chan struct{}
}

// New returns an engine for p.
func New(p *pipeline.Pipeline, opts Options) *Engine {
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = 10 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 2 * time.Minute
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = 64 << 10
	}
	if opts.MaxConcurrentStreams == 0 {
		opts.MaxConcurrentStreams = 100
	}
	if opts.BackendConnsPerClient <= 0 {
		opts.BackendConnsPerClient = 16
	}
	if opts.BodyIdleTimeout <= 0 {
		opts.BodyIdleTimeout = opts.ReadHeaderTimeout
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	e := &Engine{p: p, log: opts.Log, maxHeader: opts.MaxHeaderBytes, opts: opts}
	e.hs = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
		// Go's HTTP/2 server answers a header block over this limit
		// itself (text/plain, no HSTS, no audit record), and a single
		// field over it with a connection error. It gets headroom; the
		// limit proper is enforced in ServeHTTP, through the pipeline.
		MaxHeaderBytes: 4*opts.MaxHeaderBytes + 4096,
		ErrorLog:       log.New(slogWriter{opts.Log}, "", 0),
	}
	e.h2 = &http2.Server{
		MaxConcurrentStreams: opts.MaxConcurrentStreams,
		IdleTimeout:          opts.IdleTimeout,
		MaxReadFrameSize:     16 << 10,
	}
	if err := http2.ConfigureServer(e.hs, e.h2); err != nil {
		panic("configure http2 server: " + err.Error()) // only on a programming error
	}
	return e
}

type connKey struct{}

// ServeConn serves HTTP/2 on c until it closes.
func (e *Engine) ServeConn(c *tls.Conn, pc *pipeline.Conn) {
	e.wg.Add(1)
	defer e.wg.Done()
	co := newCoalescer(c)
	e.h2.ServeConn(co, &http2.ServeConnOpts{
		Context:    context.WithValue(context.Background(), connKey{}, &connState{pc: pc, co: co, backends: make(chan struct{}, e.opts.BackendConnsPerClient)}),
		BaseConfig: e.hs,
		Handler:    e,
	})
}

// Shutdown sends GOAWAY on every connection and waits for their streams
// until ctx is done.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.hs.Shutdown(ctx) // GOAWAY to the connections ServeConn registered
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ServeHTTP runs the pipeline for one stream.
func (e *Engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cs, _ := r.Context().Value(connKey{}).(*connState)
	if cs == nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	rv := requestView{r}
	ex := e.p.Begin(cs.pc, &rv)
	defer ex.Release()
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			e.log.Error("request handler panicked", "panic", fmt.Sprint(v))
			ex.Refuse(&pipeline.Refusal{Status: 500, Public: "internal error", Reason: fmt.Sprint("panic: ", v), Decision: "error"})
			ex.Finish(500, 0, "")
			panic(http.ErrAbortHandler)
		}
	}()
	if n := headerBytes(r); n > e.maxHeader {
		writeRefusal(w, cs, ex, &pipeline.Refusal{Status: 431, Public: "request headers too large",
			Reason: "header block of " + strconv.Itoa(n) + " bytes exceeds limits.max_header_bytes"})
		return
	}
	if rf := ex.Decide(r.Context(), &rv); rf != nil {
		writeRefusal(w, cs, ex, rf)
		return
	}
	// One connection's streams share a bounded number of backend
	// requests: many streams with pending bodies cannot hold many
	// backend connections.
	select {
	case cs.backends <- struct{}{}:
	default:
		// Only now ask for the stream's done channel (made on first
		// use): most requests never wait here.
		select {
		case cs.backends <- struct{}{}:
		case <-r.Context().Done():
			writeRefusal(w, cs, ex, ex.UpstreamError(r.Context().Err()))
			return
		}
	}
	defer func() { <-cs.backends }()
	e.forward(w, r, cs, ex, &rv)
}

func writeRefusal(w http.ResponseWriter, cs *connState, ex *pipeline.Exchange, rf *pipeline.Refusal) {
	ex.Refuse(rf)
	if rf.Status == 499 {
		ex.Finish(499, 0, "")
		return
	}
	h := w.Header()
	status, body := rf.Render(ex.HSTS(), h.Set)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if len(body) > 0 && ex.Method() != http.MethodHead {
		cs.co.arm() // HEADERS and DATA in one write
	}
	w.WriteHeader(status)
	w.Write(body)
	ex.Finish(status, int64(len(body)), "")
}

type headerSink struct{ h *fasthttp.RequestHeader }

func (s headerSink) AddHeader(name, value string) { s.h.Add(name, value) }

func (e *Engine) forward(w http.ResponseWriter, r *http.Request, cs *connState, ex *pipeline.Exchange, rv *requestView) {
	rt := ex.Route()
	breq := fasthttp.AcquireRequest()
	bresp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(bresp)
	breq.Header.SetMethod(ex.Method())
	breq.SetRequestURI(rt.Upstream.URI(ex.URI()))
	ex.WriteHeaders(rv, headerSink{&breq.Header})
	if cl := ex.ContentLength(); cl != 0 && r.Body != nil && r.Body != http.NoBody {
		idle := ex.BodyIdle()
		if idle <= 0 {
			idle = e.opts.BodyIdleTimeout
		}
		body := ex.Body(&bodyReader{r: r.Body, rc: http.NewResponseController(w), idle: idle})
		if ex.NeedsBody() {
			// Validated against the OpenAPI document before anything
			// reaches the backend: read whole, bounded by max_body.
			whole, err := io.ReadAll(body)
			if err != nil {
				fasthttp.ReleaseRequest(breq)
				writeRefusal(w, cs, ex, ex.UpstreamError(err))
				return
			}
			if rf := ex.CheckBody(rv, whole); rf != nil {
				fasthttp.ReleaseRequest(breq)
				writeRefusal(w, cs, ex, rf)
				return
			}
			breq.SetBodyRaw(whole)
		} else {
			breq.SetBodyStream(body, int(cl))
		}
	}
	if rf := ex.BackendAllowed(); rf != nil {
		fasthttp.ReleaseRequest(breq)
		writeRefusal(w, cs, ex, rf)
		return
	}
	err := rt.Upstream.Do(breq, bresp)
	ex.BackendDone(err, bresp.StatusCode())
	fasthttp.ReleaseRequest(breq)
	if err != nil {
		writeRefusal(w, cs, ex, ex.UpstreamError(err))
		return
	}

	status := bresp.StatusCode()
	cl := bresp.Header.ContentLength()
	stream := bresp.BodyStream()
	noBody := r.Method == http.MethodHead || status == 204 || status == 304 || status < 200
	var body *[]byte
	if stream != nil && !noBody && upstream.ReadWhole(cl) {
		// Read before the status goes out: a backend that dies here
		// still gets the client a clean 502, and the response leaves in
		// one write.
		body = bodyBufs.Get().(*[]byte)
		defer putBody(body)
		if cap(*body) < cl {
			*body = make([]byte, cl)
		}
		*body = (*body)[:cl]
		if _, err := io.ReadFull(stream, *body); err != nil {
			closeWithError(stream, err)
			writeRefusal(w, cs, ex, ex.UpstreamError(fmt.Errorf("read response body: %w", err)))
			return
		}
		bresp.CloseBodyStream()
		stream = nil
	}

	h := w.Header()
	relayHeaders(h, &bresp.Header, ex.HSTS(), cl)
	if body != nil {
		if len(*body) > 0 {
			// HEADERS and DATA in one TLS record and one write.
			cs.co.arm()
		}
		w.WriteHeader(status)
		n, err := w.Write(*body)
		failure := ""
		if err != nil {
			failure = "client went away mid-body: " + err.Error()
		}
		ex.Finish(status, int64(n), failure)
		return
	}
	w.WriteHeader(status)
	if stream == nil || noBody {
		if stream != nil {
			bresp.CloseBodyStream()
		}
		ex.Finish(status, 0, "")
		return
	}
	n, rerr, werr := copyBody(w, stream, cl < 0, ex)
	failure := ""
	switch {
	case rerr != nil && strings.HasPrefix(rerr.Error(), "client no longer accepted"):
		failure = rerr.Error()
	case rerr != nil:
		failure = "backend failed mid-body: " + rerr.Error()
	case werr != nil:
		failure = "client went away mid-body: " + werr.Error()
	}
	if failure != "" {
		closeWithError(stream, errors.New(failure))
	} else {
		bresp.CloseBodyStream()
	}
	ex.Finish(status, n, failure)
	if rerr != nil {
		// Never end a cut body as if it were whole: reset the stream.
		panic(http.ErrAbortHandler)
	}
}

var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func putBody(b *[]byte) {
	if cap(*b) <= upstream.BufferedResponse {
		bodyBufs.Put(b)
	}
}

func closeWithError(stream io.Reader, err error) {
	if c, ok := stream.(fasthttp.ReadCloserWithError); ok {
		c.CloseWithError(err)
	}
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyBody copies a backend body to the client, flushing after each read
// when the body is streamed (unknown length: SSE, chunked).
func copyBody(w http.ResponseWriter, r io.Reader, flush bool, ex *pipeline.Exchange) (n int64, rerr, werr error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	rc := http.NewResponseController(w)
	for {
		// A long stream (SSE) is held to the policy as a request would
		// be: a client revoked, expired or dropped by a reload loses it.
		// The check follows the read, so that what a quiet stream
		// delivers after a long wait is checked before it goes out.
		k, err := r.Read(buf)
		if ex.RecheckDue() {
			if cerr := ex.Recheck(context.Background()); cerr != nil {
				return n, fmt.Errorf("client no longer accepted: %w", cerr), nil
			}
		}
		if k > 0 {
			m, err := w.Write(buf[:k])
			n += int64(m)
			if err != nil {
				return n, nil, err
			}
			if flush {
				if err := rc.Flush(); err != nil {
					return n, nil, err
				}
			}
		}
		if err == io.EOF {
			return n, nil, nil
		}
		if err != nil {
			return n, err, nil
		}
	}
}

// requestView is the pipeline's view of an HTTP/2 request.
type requestView struct{ r *http.Request }

func (v *requestView) Method() string    { return v.r.Method }
func (v *requestView) Authority() string { return v.r.Host }
func (v *requestView) Target() string    { return v.r.RequestURI }
func (v *requestView) Proto() string     { return "HTTP/2.0" }

// ContentLength: Go's HTTP/2 server reports 0 for a stream ended with its
// headers (no body) and -1 for a body without content-length.
func (v *requestView) ContentLength() int64 {
	if v.r.ContentLength < 0 {
		return -1
	}
	return v.r.ContentLength
}
func (v *requestView) VisitHeaders(hv pipeline.HeaderVisitor) {
	for k, vals := range v.r.Header {
		for _, val := range vals {
			if !hv.VisitHeader(k, val) {
				return
			}
		}
	}
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	if n := len(p); n > 0 && p[n-1] == '\n' {
		p = p[:n-1]
	}
	w.l.Debug(string(p), "source", "http2")
	return len(p) + 1, nil
}

// headerBytes is the size of the request's header block as HTTP/2
// counts it (RFC 9113 section 6.5.2: name, value and 32 per field).
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.Host) + len(r.RequestURI) + 3*32
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 32
		}
	}
	return n
}

// bodyReader bounds each read of a stream's body by a deadline on that
// stream alone.
type bodyReader struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
}

func (b *bodyReader) Read(p []byte) (int, error) {
	b.rc.SetReadDeadline(time.Now().Add(b.idle))
	return b.r.Read(p)
}
