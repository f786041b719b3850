package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// Errors Do returns that callers map to statuses.
var (
	// ErrTimeout: the backend did not answer in time (504).
	ErrTimeout = fasthttp.ErrTimeout
	// ErrNoFreeConns: every connection to the backend is busy (503).
	ErrNoFreeConns = fasthttp.ErrNoFreeConns
)

// Config describes one backend and how to reach it.
type Config struct {
	// Backend is the http:// or https:// URL; its path, if any, prefixes
	// every request path.
	Backend *url.URL
	// TLS is used for https backends (CA, client certificate for upstream
	// mTLS, server name). If nil for https, the system roots verify the
	// backend.
	TLS *tls.Config
	// DialTimeout bounds connecting (and the TLS handshake). Default 5s.
	DialTimeout time.Duration
	// ResponseTimeout bounds the wait for the response headers after the
	// request is written, and a small framed body read with them. Default
	// 60s.
	ResponseTimeout time.Duration
	// StreamIdleTimeout bounds each read of a streamed response body (over
	// BufferedResponse or unframed): a backend that sends nothing for this
	// long mid-stream is cut off. Default 5m.
	StreamIdleTimeout time.Duration
	// MaxConns bounds the connections to the backend. Default 1024.
	MaxConns int
	// MaxIdleConnDuration closes connections idle this long. Default 10s,
	// below common backends' keep-alive timeouts.
	MaxIdleConnDuration time.Duration
}

// Client sends requests to one backend over a keep-alive pool. It knows
// no policy: the pipeline decided what to send.
type Client struct {
	hc         *fasthttp.HostClient
	addr       string
	host       string // the Host header the backend gets
	prefix     string // backend URL path without its trailing "/"
	isTLS      bool
	tls        *tls.Config
	dial       time.Duration
	response   time.Duration
	streamIdle time.Duration
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	u := cfg.Backend
	if u == nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("new upstream client: backend must be an http or https URL with a host")
	}
	c := &Client{
		host:       u.Host,
		prefix:     strings.TrimSuffix(u.EscapedPath(), "/"),
		isTLS:      u.Scheme == "https",
		dial:       cfg.DialTimeout,
		response:   cfg.ResponseTimeout,
		streamIdle: cfg.StreamIdleTimeout,
	}
	if c.dial <= 0 {
		c.dial = 5 * time.Second
	}
	if c.response <= 0 {
		c.response = 60 * time.Second
	}
	if c.streamIdle <= 0 {
		c.streamIdle = 5 * time.Minute
	}
	port := u.Port()
	if port == "" {
		port = map[bool]string{false: "80", true: "443"}[c.isTLS]
	}
	c.addr = net.JoinHostPort(u.Hostname(), port)
	if c.isTLS {
		if cfg.TLS != nil {
			c.tls = cfg.TLS.Clone()
		} else {
			c.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if c.tls.ServerName == "" {
			c.tls.ServerName = u.Hostname()
		}
		// HTTP/1.1 only: the pool speaks HTTP/1.1.
		c.tls.NextProtos = []string{"http/1.1"}
	}
	maxConns := cfg.MaxConns
	if maxConns <= 0 {
		maxConns = 1024
	}
	idle := cfg.MaxIdleConnDuration
	if idle <= 0 {
		idle = 10 * time.Second
	}
	c.hc = &fasthttp.HostClient{
		Addr:      c.addr,
		IsTLS:     c.isTLS,
		TLSConfig: c.tls,
		Dial:      c.dialTCP,
		MaxConns:  maxConns,
		// Retries belong to the pipeline: the default of 5 silently
		// retries GET, HEAD and PUT on a fresh connection. The one retry
		// allowed is for a pooled connection found unusable before
		// anything was written on it (errUnsolicited).
		MaxIdemponentCallAttempts: 2,
		RetryIfErr: func(_ *fasthttp.Request, _ int, err error) (bool, bool) {
			return false, errors.Is(err, errUnsolicited)
		},
		// The pipeline normalized the path once; the client must send
		// exactly that (engines.md pitfall 7).
		DisablePathNormalizing:   true,
		NoDefaultUserAgentHeader: true,
		StreamResponseBody:       true,
		MaxIdleConnDuration:      idle,
		ConnPoolStrategy:         fasthttp.LIFO,
		// Bounds the response headers; cleared for the body (see Do).
		ReadTimeout:           c.response,
		ReadBufferSize:        16 << 10,
		WriteBufferSize:       16 << 10,
		SecureErrorLogMessage: true,
	}
	return c, nil
}

// Addr is the backend's host:port.
func (c *Client) Addr() string { return c.addr }

// Host is the Host header the backend gets.
func (c *Client) Host() string { return c.host }

// URI returns the target sent to the backend for a normalized request URI
// (path and query): the backend URL's path joined in front.
func (c *Client) URI(uri string) string {
	if c.prefix == "" {
		return uri
	}
	return c.prefix + uri
}

func (c *Client) dialTCP(addr string) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", addr, c.dial)
	if err != nil {
		return nil, err
	}
	return newConn(conn), nil
}

// Do sends req and reads the response headers into resp; the body is a
// stream (resp.BodyStream) the caller must close with CloseBodyStream or,
// after a failure, CloseWithError, which closes the backend connection
// rather than return it to the pool.
func (c *Client) Do(req *fasthttp.Request, resp *fasthttp.Response) error {
	req.Header.SetHost(c.host)
	// Never invent a Content-Type the client did not send (fasthttp adds
	// application/octet-stream to bodies without one).
	req.Header.SetNoDefaultContentType(true)
	resp.Header.SetNoDefaultContentType(true)
	u := req.URI()
	u.DisablePathNormalizing = true
	if c.isTLS {
		u.SetScheme("https")
	}
	if err := c.hc.Do(req, resp); err != nil {
		return err
	}
	// The response timeout covered the headers. A small framed body is
	// read whole before the status goes out, under what remains of it (a
	// backend that stalls mid-body gets the client a 504, not a request
	// that hangs); a streamed body (SSE, a large download) may take as
	// long as the client keeps reading, but each of its reads is bounded
	// by the stream idle timeout, as nginx's proxy_read_timeout bounds
	// them. fasthttp sets the response timeout again after the next
	// request on a pooled connection is written.
	if !ReadWhole(resp.Header.ContentLength()) {
		if a, ok := resp.LocalAddr().(*connAddr); ok {
			a.c.idle = c.streamIdle
		}
	}
	return nil
}

// BufferedResponse is the largest response body, with a Content-Length,
// that the engines read whole before the status goes out (so that a
// backend that fails mid-body still gets the client a clean 502 or 504);
// larger or unframed bodies stream.
const BufferedResponse = 64 << 10

// ReadWhole reports whether a response body of contentLength (fasthttp's:
// negative when unframed or chunked) is read whole before the status goes
// out, under what remains of the response timeout.
func ReadWhole(contentLength int) bool {
	return contentLength >= 0 && contentLength <= BufferedResponse
}

// CloseIdle closes the pool's idle connections (after a reload replaced
// this client).
func (c *Client) CloseIdle() { c.hc.CloseIdleConnections() }

// DialRaw opens a connection to the backend for a tunnel (WebSocket): TLS
// for https backends, never pooled.
func (c *Client) DialRaw(ctx context.Context) (net.Conn, *bufio.Reader, error) {
	d := net.Dialer{Timeout: c.dial}
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, nil, err
	}
	if c.isTLS {
		tc := tls.Client(conn, c.tls)
		hctx, cancel := context.WithTimeout(ctx, c.dial)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			conn.Close()
			return nil, nil, err
		}
		conn = tc
	}
	return conn, bufio.NewReaderSize(conn, 4096), nil
}

// ResponseTimeout is the configured wait for response headers.
func (c *Client) ResponseTimeout() time.Duration { return c.response }

// IsTimeout reports whether err is a timeout.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, ErrTimeout) || errors.As(err, &ne) && ne.Timeout()
}
