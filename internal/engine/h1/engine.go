package h1

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/gatehouse/gatehouse/internal/engine/tunnel"
	"github.com/gatehouse/gatehouse/internal/pipeline"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// Options configure the engine.
type Options struct {
	// ReadHeaderTimeout bounds reading a request's headers. Default 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a keep-alive
	// connection, and a tunnel's silence. Default 2m.
	IdleTimeout time.Duration
	// BodyIdleTimeout bounds the wait for each read of a request body.
	// Default ReadHeaderTimeout.
	BodyIdleTimeout time.Duration
	// RecheckInterval is how often an open tunnel's client is checked
	// again (reload, expiry, revocation). Default 1s.
	RecheckInterval time.Duration
	// MaxHeaderBytes bounds the request line and headers (431 beyond it).
	// Default 64 KiB.
	MaxHeaderBytes int
	// Log receives operational messages. If nil, slog.Default is used.
	Log *slog.Logger
	// Linger is how long a keep-alive connection waits for its next
	// request inside fasthttp (holding its read buffer) before it is
	// parked: buffers released, waiting for the next byte in the poller
	// (Linux) or on a small goroutine. Default 20ms; negative parks at
	// once.
	Linger time.Duration
}

// bufferedBody is the body size read whole before the handler runs;
// larger bodies, and chunked ones, are streamed to the backend.
const bufferedBody = 64 << 10

var bodyBufs = sync.Pool{New: func() any { b := make([]byte, bufferedBody); return &b }}

// copyBufs relay small response bodies.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 8<<10); return &b }}

// Engine serves HTTP/1.1 on connections the gateway has accepted and
// handshaken, with fasthttp's server, through the pipeline.
type Engine struct {
	p    *pipeline.Pipeline
	srv  *fasthttp.Server
	opts Options
	log  *slog.Logger

	// stopped is closed when shutdown starts; the placeholder listener
	// lets fasthttp's own ShutdownWithContext drain ServeConn
	// connections (it returns at once without a listener).
	ln       *placeholderListener
	draining atomic.Bool
	tunnels  sync.WaitGroup

	// parked are the idle connections waiting for their next request
	// outside fasthttp; Shutdown closes them. poll (Linux: epoll) holds
	// those parked after a request without a goroutine each; nil where
	// there is none.
	mu       sync.Mutex
	parked   map[*conn]struct{}
	poll     *poller
	pollWarn sync.Once
}

// New returns an engine for p.
func New(p *pipeline.Pipeline, opts Options) *Engine {
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = 10 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 2 * time.Minute
	}
	if opts.BodyIdleTimeout <= 0 {
		opts.BodyIdleTimeout = opts.ReadHeaderTimeout
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = 64 << 10
	}
	if opts.RecheckInterval <= 0 {
		opts.RecheckInterval = time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Linger == 0 {
		opts.Linger = defaultLinger
	}
	e := &Engine{p: p, opts: opts, log: opts.Log, ln: newPlaceholderListener(), parked: map[*conn]struct{}{}}
	if canWaitReadable {
		var err error
		if e.poll, err = sharedPoller(); err != nil && err != errNoPoller {
			e.pollFailed(err)
		}
	}
	e.srv = &fasthttp.Server{
		Handler:       e.handle,
		ErrorHandler:  e.handleError,
		ExpectHandler: e.expect,
		// The first bytes of a body are read before the handler runs:
		// under the body idle timeout, not the header timeout.
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			if n := h.ContentLength(); n == 0 || n == -2 {
				return fasthttp.RequestConfig{} // no body: no deadline to move
			}
			idle := opts.BodyIdleTimeout
			if pol := p.Policy(); pol != nil && pol.BodyIdle > 0 {
				idle = pol.BodyIdle
			}
			return fasthttp.RequestConfig{ReadTimeout: idle}
		},
		// ReadTimeout covers the headers (and a small body read with
		// them); a streamed body is bounded per read (bodyReader).
		ReadTimeout:  opts.ReadHeaderTimeout,
		IdleTimeout:  opts.IdleTimeout,
		WriteTimeout: 0, // streams (SSE) may run as long as the client reads
		// The read buffer is also the header size cap.
		ReadBufferSize:     opts.MaxHeaderBytes,
		WriteBufferSize:    16 << 10,
		MaxRequestBodySize: bufferedBody,
		StreamRequestBody:  true,
		// Multipart bodies go to the backend untouched (engines.md b).
		DisablePreParseMultipartForm: true,
		// Names are canonicalized so that lookups are case-insensitive
		// (a lower-case identity header must not slip past a check).
		DisableHeaderNamesNormalizing: false,
		// Idle keep-alive connections hold no buffers.
		ReduceMemoryUsage:     true,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		NoDefaultDate:         false,
		CloseOnShutdown:       true,
		SecureErrorLogMessage: true,
		Logger:                fasthttpLogger{opts.Log},
	}
	go e.srv.Serve(e.ln)
	return e
}

// defaultLinger: a connection busy enough to send its next request within
// this time stays inside fasthttp; one idle longer is parked.
const defaultLinger = 20 * time.Millisecond

// errParked ends fasthttp's ServeConn on an idle keep-alive connection
// without closing it: fasthttp treats an error before the first byte of a
// next request as the end of a keep-alive connection, releases its
// buffers and request context, and calls Close, which a parked conn
// ignores.
var errParked = errors.New("keep-alive connection parked")

// errNoPoller: this platform has no parked-connection poller.
var errNoPoller = errors.New("no parked-connection poller on this platform")

// conn is the connection fasthttp serves: it carries the pipeline's view
// of the connection to the handler (ctx.Conn()), and puts the framing
// gate between the connection and fasthttp's parser.
//
// Idle keep-alive connections are parked (issue 8, memory): fasthttp with
// StreamRequestBody keeps a read buffer of ReadBufferSize (the header
// cap, 64 KiB by default) for the whole life of a connection, and the
// goroutine that served a request (or did the handshake) keeps the stack
// it grew. So a connection that stays idle past Linger leaves fasthttp
// (errParked) and waits for its next byte in the poller (Linux, no
// goroutine) or on a fresh goroutine with a small stack; the byte is
// handed back to fasthttp (pending) on a new ServeConn.
type conn struct {
	net.Conn
	e    *Engine
	pc   *pipeline.Conn
	gate gate
	// reported is set once the gate's refusal has been answered and
	// audited.
	reported bool

	done func()
	// armed: a request was handled since the connection was (re)attached,
	// so a read deadline set at a message boundary is fasthttp's wait for
	// the next one; lingering: that wait runs under the linger deadline.
	armed     bool
	lingering bool
	// parking: fasthttp's ServeConn is ending because the connection is
	// parked; Close must leave it open. Atomic: fasthttp's shutdown
	// closes idle connections from its own goroutine.
	parking atomic.Bool
	// readDeadline is the deadline fasthttp set (the idle timeout while
	// waiting for a next request); the parked wait keeps it.
	readDeadline time.Time
	pending      byte
	hasPending   bool
	idleAfter    bool // parked after a request (not right after the handshake)
	// raw is the socket under the TLS connection (nil if unknown): a
	// connection parked after a request waits on it without reading.
	raw syscall.RawConn

	// The poller's state (guarded by Engine.mu while parked): polled, the
	// connection waits in the poller, with no goroutine, under pollID
	// and expiry; woken, the poller saw it readable and a goroutine now
	// reads its first byte. pollID is 0 until the socket is first put
	// in the poller's set (ids start at 1).
	polled, woken bool
	pollID        uint64
	expiry        *time.Timer
}

// Read gives fasthttp only bytes the gate passed; after a refusal it
// returns the FramingError, so fasthttp stops reading and answers through
// ErrorHandler.
func (c *conn) Read(p []byte) (int, error) {
	if c.gate.err != nil {
		return 0, c.gate.err
	}
	var n int
	var err error
	switch {
	case c.hasPending:
		p[0], c.hasPending, n = c.pending, false, 1
	case c.lingering && c.gate.idle():
		// fasthttp waits for the next request under the linger deadline
		// (SetReadDeadline): when it passes, park.
		c.lingering = false
		n, err = c.Conn.Read(p)
		if n == 0 && isTimeout(err) && time.Now().Before(c.readDeadline) {
			c.parking.Store(true)
			return 0, errParked
		}
	default:
		n, err = c.Conn.Read(p)
	}
	if n > 0 && !c.gate.opaque {
		k, ferr := c.gate.feed(p[:n])
		if ferr != nil {
			if k > 0 {
				return k, nil
			}
			return 0, ferr
		}
	}
	return n, err
}

// SetReadDeadline records fasthttp's deadline. When fasthttp sets it to
// wait for a next request (a request was handled, the gate is between
// messages), the connection gets the earlier linger deadline instead:
// one deadline change per request, not two. fasthttp sets its header
// deadline again as soon as the first byte arrives.
func (c *conn) SetReadDeadline(t time.Time) error {
	if c.gate.opaque {
		// A tunnel (or an Upgrade request's end): never parked, and its
		// two copy goroutines set deadlines concurrently.
		return c.Conn.SetReadDeadline(t)
	}
	c.readDeadline = t
	c.lingering = false
	if c.armed && c.gate.idle() {
		c.armed = false
		if ld := time.Now().Add(c.e.opts.Linger); t.IsZero() || ld.Before(t) {
			c.lingering = true
			return c.Conn.SetReadDeadline(ld)
		}
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *conn) SetDeadline(t time.Time) error {
	if c.gate.opaque {
		return c.Conn.SetDeadline(t)
	}
	c.readDeadline, c.lingering = t, false
	return c.Conn.SetDeadline(t)
}

// Close closes the connection, unless it is being parked.
func (c *conn) Close() error {
	if c.parking.Load() {
		return nil
	}
	return c.Conn.Close()
}

// ServeConn serves HTTP/1.1 on c until it closes; c is closed on return.
func (e *Engine) ServeConn(c net.Conn, pc *pipeline.Conn) {
	done := make(chan struct{})
	e.Serve(c, pc, func() { close(done) })
	<-done
}

// Serve serves HTTP/1.1 on c, which has just been handshaken, and calls
// done once c is closed. It returns at once: the connection is served on
// goroutines of its own, a fresh one after every idle period, so that an
// idle connection holds no goroutine (Linux) or only a small stack.
func (e *Engine) Serve(c net.Conn, pc *pipeline.Conn, done func()) {
	cn := &conn{Conn: c, e: e, pc: pc, gate: gate{maxHead: e.opts.MaxHeaderBytes}, done: done}
	if canWaitReadable {
		cn.raw = rawConnOf(c)
	}
	// fasthttp's ReadTimeout bounds the wait for a new connection's
	// first byte; the wait is ours now.
	cn.readDeadline = time.Now().Add(e.opts.ReadHeaderTimeout)
	e.park(cn)
}

// rawConnOf finds the socket under c (through crypto/tls and the
// gateway's wrappers, which expose NetConn).
func rawConnOf(c net.Conn) syscall.RawConn {
	for range 4 {
		if sc, ok := c.(syscall.Conn); ok {
			if raw, err := sc.SyscallConn(); err == nil {
				return raw
			}
			return nil
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}

// park waits for c's next byte on a fresh goroutine, outside fasthttp.
func (e *Engine) park(c *conn) {
	e.mu.Lock()
	if e.draining.Load() {
		e.mu.Unlock()
		c.Conn.Close()
		c.done()
		return
	}
	e.parked[c] = struct{}{}
	if c.idleAfter && c.raw != nil && e.poll != nil && !c.readDeadline.IsZero() {
		// After a request crypto/tls holds no whole record (see wake), so
		// the socket's readiness is the next request's: wait in the
		// poller, with no goroutine, until it or the idle timeout comes.
		err := e.poll.arm(c)
		if err == nil {
			c.polled = true
			id := c.pollID
			c.expiry = time.AfterFunc(time.Until(c.readDeadline), func() { e.expire(c, id) })
			e.mu.Unlock()
			return
		}
		e.pollFailed(err)
	}
	e.mu.Unlock()
	go e.wake(c)
}

// pollFailed says, once per engine, that the poller cannot hold parked
// connections (it could not start, or an arm failed): they wait on
// goroutines of their own instead.
func (e *Engine) pollFailed(err error) {
	e.pollWarn.Do(func() {
		e.log.Warn("idle keep-alive connections wait on goroutines of their own (more memory per idle connection)", "error", err)
	})
}

// ready is the poller's: c's socket became readable (bytes, the peer's
// FIN, an error). A goroutine reads its first byte and serves it; c stays
// in parked until then, so that Shutdown can still close it.
func (e *Engine) ready(c *conn) {
	e.mu.Lock()
	if !c.polled {
		e.mu.Unlock() // expired or closed by Shutdown first
		return
	}
	c.polled, c.woken = false, true
	c.expiry.Stop()
	e.mu.Unlock()
	go e.wake(c)
}

// expire ends c, parked in the poller under id, at its idle timeout.
func (e *Engine) expire(c *conn, id uint64) {
	e.mu.Lock()
	if !c.polled || c.pollID != id {
		e.mu.Unlock() // woken (or shut down) first; a later park has its own timer
		return
	}
	c.polled = false
	delete(e.parked, c)
	e.mu.Unlock()
	e.poll.forget(c)
	c.Conn.Close()
	c.done()
}

// wake waits for the first byte of c's next request (under the deadline
// fasthttp set: the idle timeout, or the header timeout of a new
// connection), then serves it with fasthttp until c closes or is parked
// again.
func (e *Engine) wake(c *conn) {
	var b [1]byte
	c.Conn.SetReadDeadline(c.readDeadline)
	n := 0
	// After a request, crypto/tls holds at most part of a record (the
	// read that parked the connection went to the socket and timed out),
	// so the socket's readiness is the next request's. Right after the
	// handshake the first request may already be buffered in crypto/tls:
	// that wait is a read.
	if c.woken || c.raw == nil || !c.idleAfter || waitReadable(c.raw) {
		n, _ = c.Conn.Read(b[:])
	}
	c.woken = false
	e.mu.Lock()
	delete(e.parked, c)
	draining := e.draining.Load()
	e.mu.Unlock()
	if n == 0 || draining {
		// Closed, timed out, or shutting down while idle: close
		// silently, as fasthttp does with an idle connection.
		c.Conn.Close()
		c.done()
		return
	}
	c.pending, c.hasPending = b[0], true
	c.armed, c.lingering = false, false
	c.parking.Store(false)
	e.srv.ServeConn(c)
	if c.parking.Load() {
		c.parking.Store(false)
		c.idleAfter = true
		e.park(c)
		return
	}
	if c.gate.err != nil && !c.reported {
		// fasthttp closed without an answer (the refused bytes began a
		// request after the last one it served): the record still says
		// what was refused.
		rv := emptyView{}
		ex := e.p.Begin(c.pc, rv)
		ex.Refuse(&pipeline.Refusal{Status: c.gate.err.Status, Reason: c.gate.err.Error() + " (connection closed)"})
		ex.Finish(0, 0, "")
		ex.Release()
	}
	c.done()
}

// emptyView is the request view of bytes that never became a request.
type emptyView struct{}

func (emptyView) Method() string                      { return "" }
func (emptyView) Authority() string                   { return "" }
func (emptyView) Target() string                      { return "" }
func (emptyView) Proto() string                       { return "HTTP/1.1" }
func (emptyView) ContentLength() int64                { return 0 }
func (emptyView) VisitHeaders(pipeline.HeaderVisitor) {}

// Shutdown stops keep-alive (every next response says Connection: close),
// closes idle connections, and waits for in-flight requests and tunnels
// until ctx is done.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.draining.Store(true)
	var polled []*conn
	for c := range e.parked {
		if c.polled {
			// No goroutine waits on it: finish it here.
			c.polled = false
			c.expiry.Stop()
			delete(e.parked, c)
			polled = append(polled, c)
			continue
		}
		c.Conn.Close() // its wake sees the error and finishes it
	}
	e.mu.Unlock()
	for _, c := range polled {
		e.poll.forget(c)
		c.Conn.Close()
		c.done()
	}
	err := e.srv.ShutdownWithContext(ctx)
	done := make(chan struct{})
	go func() { e.tunnels.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

func connOf(ctx *fasthttp.RequestCtx) *pipeline.Conn {
	if c, ok := ctx.Conn().(*conn); ok {
		return c.pc
	}
	return nil
}

func gateOf(ctx *fasthttp.RequestCtx) *conn {
	c, _ := ctx.Conn().(*conn)
	return c
}

type exKey struct{}

// expect runs the decisions for a request with "Expect: 100-continue"
// before fasthttp asks for its body: a refused request never sends it.
func (e *Engine) expect(ctx *fasthttp.RequestCtx) int {
	pc := connOf(ctx)
	if pc == nil {
		return fasthttp.StatusInternalServerError
	}
	rv := requestView{ctx}
	ex := e.p.Begin(pc, &rv)
	if rf := ex.Decide(ctx, &rv); rf != nil {
		e.writeRefusal(ctx, ex, rf)
		ex.Release()
		return rf.Status
	}
	ctx.SetUserValue(exKey{}, ex)
	return fasthttp.StatusContinue
}

func (e *Engine) handle(ctx *fasthttp.RequestCtx) {
	var ex *pipeline.Exchange
	defer func() {
		if v := recover(); v != nil {
			e.log.Error("request handler panicked", "panic", fmt.Sprint(v))
			ctx.SetConnectionClose()
			if ex != nil {
				rf := &pipeline.Refusal{Status: 500, Public: "internal error", Reason: fmt.Sprint("panic: ", v), Decision: "error"}
				ex.Refuse(rf)
				ex.Finish(500, 0, "")
			}
			ctx.Response.Reset()
			writeError(ctx, 500, "internal error", "")
		}
	}()
	if cn := gateOf(ctx); cn != nil {
		// The wait for the next request may park the connection.
		defer func() { cn.armed = true }()
	}
	rv := requestView{ctx}
	if v, ok := ctx.UserValue(exKey{}).(*pipeline.Exchange); ok {
		ex = v
		ctx.RemoveUserValue(exKey{})
	} else {
		pc := connOf(ctx)
		if pc == nil {
			writeError(ctx, 500, "internal error", "")
			return
		}
		ex = e.p.Begin(pc, &rv)
		if rf := ex.Decide(ctx, &rv); rf != nil {
			e.writeRefusal(ctx, ex, rf)
			ex.Release()
			return
		}
	}
	if ex.Upgrade() != "" {
		e.upgrade(ctx, ex, &rv)
		return
	}
	e.forward(ctx, ex, &rv)
}

// writeRefusal answers with the pipeline's refusal and finishes the
// record; the answer has no body left to stream.
func (e *Engine) writeRefusal(ctx *fasthttp.RequestCtx, ex *pipeline.Exchange, rf *pipeline.Refusal) {
	ex.Refuse(rf)
	ctx.Response.Reset()
	if rf.Status == 499 {
		ctx.SetConnectionClose()
		ex.Finish(499, 0, "")
		return
	}
	status, body := rf.Render(ex.HSTS(), func(k, v string) { ctx.Response.Header.Set(k, v) })
	ctx.SetStatusCode(status)
	ctx.Response.SetBodyRaw(body)
	if rf.Close {
		ctx.SetConnectionClose()
	}
	e.closeIfDone(ctx, ex)
	ex.Finish(status, int64(len(body)), "")
}

// handleError answers what fasthttp could not parse: through the
// pipeline's error form, with HSTS and an audit record.
func (e *Engine) handleError(ctx *fasthttp.RequestCtx, err error) {
	status, public := 400, "bad request"
	var small *fasthttp.ErrSmallBuffer
	cn := gateOf(ctx)
	switch {
	case cn != nil && cn.gate.err != nil:
		cn.reported = true
		status, err = cn.gate.err.Status, cn.gate.err
		if status == 431 {
			public = "request headers too large"
		}
	case errors.As(err, &small) || errors.Is(err, fasthttp.ErrSmallReadBuffer):
		status, public = 431, "request headers too large"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status, public = 413, "request body too large"
	case isTimeout(err):
		status, public = 408, "request timeout"
	}
	pc := connOf(ctx)
	if pc == nil {
		writeError(ctx, status, public, "")
		return
	}
	rv := requestView{ctx}
	ex := e.p.Begin(pc, &rv)
	rf := &pipeline.Refusal{Status: status, Public: public, Reason: "malformed request: " + err.Error(), Close: true}
	ex.Refuse(rf)
	e.writeRefusal(ctx, ex, rf)
	ex.Release()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// writeError writes the JSON error form without an exchange (no policy,
// so no HSTS value is known: only reachable outside the gateway).
func writeError(ctx *fasthttp.RequestCtx, status int, msg, hsts string) {
	rf := &pipeline.Refusal{Status: status, Public: msg}
	st, body := rf.Render(hsts, func(k, v string) { ctx.Response.Header.Set(k, v) })
	ctx.SetStatusCode(st)
	ctx.Response.SetBodyRaw(body)
}

// headerSink adds the pipeline's outgoing headers to a fasthttp request.
type headerSink struct{ h *fasthttp.RequestHeader }

func (s headerSink) AddHeader(name, value string) { s.h.Add(name, value) }

func (e *Engine) forward(ctx *fasthttp.RequestCtx, ex *pipeline.Exchange, rv *requestView) {
	rt := ex.Route()
	breq := fasthttp.AcquireRequest()
	bresp := fasthttp.AcquireResponse()
	breq.Header.SetMethod(ex.Method())
	breq.SetRequestURI(rt.Upstream.URI(ex.URI()))
	ex.WriteHeaders(rv, headerSink{&breq.Header})

	var err error
	var buf *[]byte
	if cl := ex.ContentLength(); cl != 0 {
		// Never Request.Body(): it would read a streamed body whole into
		// memory (and turn a read error into the body text). The stream
		// starts with the bytes fasthttp read with the head.
		if s := ctx.RequestBodyStream(); s != nil {
			idle := ex.BodyIdle()
			if idle <= 0 {
				idle = e.opts.BodyIdleTimeout
			}
			body := ex.Body(&bodyReader{r: s, c: ctx.Conn(), idle: idle})
			if ex.NeedsBody() {
				// Validated against the OpenAPI document before anything
				// reaches the backend: read whole, bounded by max_body.
				whole, rerr := io.ReadAll(body)
				switch {
				case rerr != nil:
					err = rerr
				case cl > 0 && int64(len(whole)) != cl:
					err = &pipeline.ClientBodyError{Err: io.ErrUnexpectedEOF}
				default:
					if rf := ex.CheckBody(rv, whole); rf != nil {
						fasthttp.ReleaseRequest(breq)
						fasthttp.ReleaseResponse(bresp)
						e.writeRefusal(ctx, ex, rf)
						ex.Release()
						return
					}
					breq.SetBodyRaw(whole)
				}
			} else {
				// Up to bufferedBody is read before anything goes to the
				// backend, so a small body that breaks its framing or its
				// limit never reaches it even in part, and a small chunked
				// body is sent with a Content-Length. Larger ones stream.
				buf = bodyBufs.Get().(*[]byte)
				n, rerr := io.ReadFull(body, *buf)
				switch {
				case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
					if cl > 0 && int64(n) != cl {
						err = &pipeline.ClientBodyError{Err: io.ErrUnexpectedEOF}
					}
					breq.SetBodyRaw((*buf)[:n])
				case rerr != nil:
					err = rerr
				default:
					breq.SetBodyStream(io.MultiReader(bytes.NewReader((*buf)[:n]), body), int(cl))
				}
			}
		}
	}
	if err == nil {
		if rf := ex.BackendAllowed(); rf != nil {
			fasthttp.ReleaseRequest(breq)
			fasthttp.ReleaseResponse(bresp)
			if buf != nil {
				bodyBufs.Put(buf)
			}
			e.writeRefusal(ctx, ex, rf)
			ex.Release()
			return
		}
		err = rt.Upstream.Do(breq, bresp)
		ex.BackendDone(err, bresp.StatusCode())
	}
	fasthttp.ReleaseRequest(breq)
	if buf != nil {
		bodyBufs.Put(buf)
	}
	if err != nil {
		fasthttp.ReleaseResponse(bresp)
		e.writeRefusal(ctx, ex, ex.UpstreamError(err))
		ex.Release()
		return
	}
	e.respond(ctx, ex, bresp)
}

// respond relays the backend's response: status, headers minus hop-by-hop
// ones, gatehouse's HSTS, and the body, buffered when small and framed,
// else streamed and flushed as it comes.
func (e *Engine) respond(ctx *fasthttp.RequestCtx, ex *pipeline.Exchange, bresp *fasthttp.Response) {
	status := bresp.StatusCode()
	h := &ctx.Response.Header
	bresp.Header.CopyTo(h)
	stripResponse(h)
	h.Set("Strict-Transport-Security", ex.HSTS())
	ctx.SetStatusCode(status)
	e.closeIfDone(ctx, ex)

	stream := bresp.BodyStream()
	cl := bresp.Header.ContentLength()
	noBody := ctx.IsHead() || status == 204 || status == 304 || (status >= 100 && status < 200)
	switch {
	case noBody || stream == nil:
		if stream != nil {
			bresp.CloseBodyStream()
		}
		if noBody && cl >= 0 {
			h.SetContentLength(cl)
		}
		fasthttp.ReleaseResponse(bresp)
		ex.Finish(status, 0, "")
		ex.Release()
	case upstream.ReadWhole(cl):
		// Read before the status goes out: a backend that dies here
		// still gets the client a clean 502.
		// Through a pooled buffer: io.CopyN would allocate one per
		// response.
		buf := copyBufs.Get().(*[]byte)
		n, err := io.CopyBuffer(ctx.Response.BodyWriter(), &io.LimitedReader{R: stream, N: int64(cl)}, *buf)
		copyBufs.Put(buf)
		if err == nil && n < int64(cl) {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			closeWithError(stream, err)
			fasthttp.ReleaseResponse(bresp)
			e.writeRefusal(ctx, ex, ex.UpstreamError(fmt.Errorf("read response body: %w", err)))
			ex.Release()
			return
		}
		bresp.CloseBodyStream()
		fasthttp.ReleaseResponse(bresp)
		ex.Finish(status, n, "")
		ex.Release()
	default:
		if cl < 0 {
			cl = -1 // chunked to the client, each read flushed
		}
		ctx.Response.SetBodyStream(&responseBody{ex: ex, r: stream, resp: bresp, status: status}, cl)
	}
}

// closeIfDone marks the response Connection: close when the connection
// must not serve another request: while draining, and after an Upgrade
// request that did not become a tunnel (the gate stopped reading the
// connection as HTTP after its head).
func (e *Engine) closeIfDone(ctx *fasthttp.RequestCtx, ex *pipeline.Exchange) {
	if e.draining.Load() {
		ctx.SetConnectionClose()
	}
	if cn := gateOf(ctx); cn != nil && cn.gate.sawUpReq && ex.Upgrade() == "" {
		ctx.SetConnectionClose()
	}
}

// stripResponse removes backend headers that are not relayed.
func stripResponse(h *fasthttp.ResponseHeader) {
	h.ResetConnectionClose()
	for _, name := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding",
		"Upgrade", "Trailer", "Strict-Transport-Security"} {
		h.Del(name)
	}
}

func closeWithError(r io.Reader, err error) {
	if c, ok := r.(fasthttp.ReadCloserWithError); ok {
		c.CloseWithError(err)
	}
}

// responseBody streams a backend body to the client and finishes the
// audit record when fasthttp is done with it (pitfall 1): fasthttp calls
// CloseWithError with the write error, if any.
type responseBody struct {
	ex     *pipeline.Exchange
	r      io.Reader
	resp   *fasthttp.Response
	status int
	n      int64
	rerr   error
	closed bool
}

func (b *responseBody) Read(p []byte) (int, error) {
	// A long stream (SSE) is held to the policy as a request would be: a
	// client revoked, expired or dropped by a reload loses it.
	// The check follows the read, so that what a quiet stream (SSE)
	// delivers after a long wait is checked before it goes out.
	n, err := b.r.Read(p)
	if b.ex.RecheckDue() {
		if cerr := b.ex.Recheck(context.Background()); cerr != nil {
			b.rerr = fmt.Errorf("client no longer accepted: %w", cerr)
			return 0, b.rerr
		}
	}
	b.n += int64(n)
	if err != nil && err != io.EOF {
		b.rerr = err
	}
	return n, err
}

func (b *responseBody) CloseWithError(werr error) error {
	if b.closed {
		return nil // the exchange went back to its pool with the first close
	}
	b.closed = true
	failure := ""
	switch {
	case b.rerr != nil && strings.HasPrefix(b.rerr.Error(), "client no longer accepted"):
		failure = b.rerr.Error()
	case b.rerr != nil:
		failure = "backend failed mid-body: " + b.rerr.Error()
	case werr != nil:
		failure = "client went away mid-body: " + werr.Error()
	}
	var err error
	if failure != "" {
		err = errors.New(failure)
	}
	closeWithError(b.r, err)
	fasthttp.ReleaseResponse(b.resp)
	b.ex.Finish(b.status, b.n, failure)
	b.ex.Release()
	return nil
}

func (b *responseBody) Close() error { return b.CloseWithError(nil) }

// bodyReader bounds each read of a streamed request body by an idle
// deadline on the client connection.
type bodyReader struct {
	r    io.Reader
	c    net.Conn
	idle time.Duration
}

func (b *bodyReader) Read(p []byte) (int, error) {
	b.c.SetReadDeadline(time.Now().Add(b.idle))
	return b.r.Read(p)
}

// upgrade passes a WebSocket upgrade through a raw backend connection.
func (e *Engine) upgrade(ctx *fasthttp.RequestCtx, ex *pipeline.Exchange, rv *requestView) {
	t, bresp, err := tunnel.Open(ctx, ex, rv)
	if err != nil {
		e.writeRefusal(ctx, ex, ex.UpstreamError(err))
		ex.Release()
		return
	}
	status := bresp.StatusCode()
	h := &ctx.Response.Header
	bresp.Header.CopyTo(h)
	stripResponse(h)
	h.Set("Strict-Transport-Security", ex.HSTS())
	ctx.SetStatusCode(status)
	if status != fasthttp.StatusSwitchingProtocols {
		ctx.SetConnectionClose()
		// The backend declined: relay its answer, close the raw conn.
		ctx.Response.SetBody(bresp.Body())
		n := len(bresp.Body())
		t.Close()
		fasthttp.ReleaseResponse(bresp)
		ex.Finish(status, int64(n), "")
		ex.Release()
		return
	}
	fasthttp.ReleaseResponse(bresp)
	h.Set("Connection", "Upgrade")
	h.Set("Upgrade", ex.Upgrade())
	e.tunnels.Add(1)
	ctx.Hijack(func(c net.Conn) {
		defer e.tunnels.Done()
		in, out, why := t.Relay(c, e.opts.IdleTimeout, func() error { return ex.Recheck(context.Background()) }, e.opts.RecheckInterval)
		ex.AddBytesIn(in)
		if strings.HasPrefix(why, "client no longer accepted") {
			ex.Refuse(&pipeline.Refusal{Status: 101, Reason: why, Decision: "deny"})
		} else {
			ex.Note("tunnel ended: " + why)
		}
		ex.Finish(101, out, "")
		ex.Release()
	})
}

// requestView is the pipeline's view of a fasthttp request. Strings alias
// fasthttp's buffers (valid until the request is done).
type requestView struct{ ctx *fasthttp.RequestCtx }

func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func (r *requestView) Method() string    { return b2s(r.ctx.Method()) }
func (r *requestView) Authority() string { return b2s(r.ctx.Request.Header.Host()) }
func (r *requestView) Target() string    { return b2s(r.ctx.Request.Header.RequestURI()) }
func (r *requestView) Proto() string {
	p := r.ctx.Request.Header.Protocol()
	switch {
	case bytes.Equal(p, []byte("HTTP/1.1")):
		return "HTTP/1.1"
	case bytes.Equal(p, []byte("HTTP/1.0")):
		return "HTTP/1.0"
	}
	return strings.Clone(b2s(p))
}
func (r *requestView) ContentLength() int64 {
	n := r.ctx.Request.Header.ContentLength()
	if n < 0 {
		if n == -2 {
			return 0 // no Content-Length, no Transfer-Encoding: no body
		}
		return -1
	}
	return int64(n)
}
func (r *requestView) VisitHeaders(hv pipeline.HeaderVisitor) {
	for k, v := range r.ctx.Request.Header.All() {
		if !hv.VisitHeader(b2s(k), b2s(v)) {
			return
		}
	}
}

type fasthttpLogger struct{ l *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.l.Debug(fmt.Sprintf(format, args...), "source", "fasthttp")
}

// placeholderListener never yields a connection; it exists so that
// fasthttp's Serve and ShutdownWithContext run for connections given to
// ServeConn.
type placeholderListener struct {
	once sync.Once
	done chan struct{}
}

func newPlaceholderListener() *placeholderListener {
	return &placeholderListener{done: make(chan struct{})}
}

func (l *placeholderListener) Accept() (net.Conn, error) {
	<-l.done
	return nil, io.EOF
}

func (l *placeholderListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *placeholderListener) Addr() net.Addr { return placeholderAddr{} }

type placeholderAddr struct{}

func (placeholderAddr) Network() string { return "gatehouse" }
func (placeholderAddr) String() string  { return "serveconn" }
