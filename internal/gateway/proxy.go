package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/certsource"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/sanitize"
)

// proxy is a reverse proxy with its own transport; routes with the same
// upstream TLS settings share one, so they share the keep-alive pool.
type proxy struct {
	transport *http.Transport
	rp        *httputil.ReverseProxy
}

// proxyFor returns the shared proxy for the route's upstream settings.
func proxyFor(f *config.File, rc *config.Route, cache map[string]*proxy) (*proxy, error) {
	var key string
	if u := rc.UpstreamTLS; u != nil {
		key = u.CA + "\x00" + u.Cert + "\x00" + u.Key + "\x00" + u.ServerName
	}
	if p, ok := cache[key]; ok {
		return p, nil
	}
	tr, err := newTransport(f, rc.UpstreamTLS)
	if err != nil {
		return nil, err
	}
	p := &proxy{transport: tr}
	p.rp = &httputil.ReverseProxy{
		Transport:    tr,
		Rewrite:      rewrite,
		BufferPool:   copyBuffers,
		ErrorHandler: proxyError,
		ErrorLog:     nil, // errors go through proxyError
		// FlushInterval 0: ReverseProxy already flushes at once for
		// streaming responses (unknown length, text/event-stream), and
		// buffers the rest to avoid a syscall per write.
	}
	cache[key] = p
	return p, nil
}

// copyBuffers recycles the buffers ReverseProxy copies bodies through;
// without a pool it allocates 32 KiB for every request.
var copyBuffers = &bufferPool{}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if buf, ok := b.p.Get().(*[]byte); ok {
		return *buf
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// newTransport is tuned for many concurrent clients behind one gateway:
// a large keep-alive pool per backend, bounded dial and header waits, and
// never the environment's HTTP proxy.
func newTransport(f *config.File, u *config.UpstreamTLS) (*http.Transport, error) {
	t := f.Config.Timeouts
	tr := &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   time.Duration(t.BackendConnect),
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   time.Duration(t.BackendConnect),
		ResponseHeaderTimeout: time.Duration(t.BackendResponse),
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
	if u == nil {
		return tr, nil
	}
	tc := tr.TLSClientConfig
	tc.ServerName = u.ServerName
	if u.CA != "" {
		pool, _, err := certsource.LoadCAs([]string{f.Resolve(u.CA)})
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if u.Cert != "" {
		kp, err := certsource.LoadKeyPair(f.Resolve(u.Cert), f.Resolve(u.Key), nil)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{kp}
	}
	return tr, nil
}

// rewrite builds the outgoing request. The request state computed by the
// handler (route, normalized path, identity headers) travels in the
// context, so the path matched by policy is exactly the path sent.
func rewrite(pr *httputil.ProxyRequest) {
	st := stateFrom(pr.In.Context())
	// Set the normalized path before SetURL joins it to the backend's.
	pr.Out.URL.Path, _ = url.PathUnescape(st.path)
	pr.Out.URL.RawPath = st.path
	pr.SetURL(st.route.backend)
	// ReverseProxy removed Connection-nominated headers before calling
	// Rewrite, so what is set here cannot be removed by a client.
	// Every incoming header that could pose as an identity or origin
	// header goes, in every spelling (DESIGN.md invariant 6), before
	// gatehouse sets its own.
	headerStripper.StripHeader(pr.Out.Header)
	h := pr.Out.Header
	if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
		h["X-Forwarded-For"] = []string{ip}
	}
	// The normalized host, never the raw Host header (issue 9 item 3).
	h["X-Forwarded-Host"] = []string{st.host}
	h["X-Forwarded-Proto"] = []string{"https"}
	for k, v := range st.identityHeaders {
		// Shared by the connection's requests: each value slice has
		// len == cap (http.Header.Set), so an append elsewhere copies.
		pr.Out.Header[k] = v
	}
}

// headerStripper removes identity and forwarding headers in every
// spelling from outgoing requests.
var headerStripper = sanitize.NewHeaderStripper(nil)

// proxyError answers a failed backend exchange: 504 when it timed out,
// 413 when the body exceeded the route's limit, 502 otherwise.
func proxyError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateFrom(r.Context())
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		st.reason = "request body larger than max_body"
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		st.reason = "client went away"
		st.status = 499 // logged only; nobody is listening
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		st.reason = "backend timeout: " + err.Error()
		writeError(w, http.StatusGatewayTimeout, "backend timeout")
	default:
		st.reason = "backend error: " + err.Error()
		writeError(w, http.StatusBadGateway, "backend unavailable")
	}
}
