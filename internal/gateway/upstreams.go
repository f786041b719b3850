package gateway

import (
	"crypto/tls"
	"net/url"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/certsource"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// upstreamFor returns the backend client for a route: one per backend
// URL, upstream TLS setting and timeouts, shared by the routes that agree
// on all three, and carried over from the previous snapshot when
// unchanged so a reload keeps the warm pool. Upstream TLS files are read
// again on every reload (a rotated client certificate takes effect).
func upstreamFor(f *config.File, rc *config.Route, backend *url.URL, ups, prev map[string]*upstream.Client) (*upstream.Client, error) {
	t := f.Config.Timeouts
	key := backend.String() + "\x00" + strconv.FormatInt(int64(t.BackendConnect), 10) + "\x00" + strconv.FormatInt(int64(t.BackendResponse), 10) +
		"\x00" + strconv.FormatInt(int64(t.BackendIdle), 10)
	var pool config.BackendPool
	if rc.BackendPool != nil {
		pool = *rc.BackendPool
		key += "\x00pool:" + strconv.Itoa(pool.MaxConns) + "," + strconv.FormatInt(int64(pool.IdleTimeout), 10)
	}
	var tc *tls.Config
	if u := rc.UpstreamTLS; u != nil || backend.Scheme == "https" {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
		if u != nil {
			key += "\x00" + u.CA + "\x00" + u.Cert + "\x00" + u.Key + "\x00" + u.ServerName
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
		}
	}
	if c, ok := ups[key]; ok {
		return c, nil
	}
	// Only a plain backend's pool is carried over: upstream TLS files are
	// read afresh, so a reload after rotating them takes effect.
	if c, ok := prev[key]; ok && rc.UpstreamTLS == nil {
		ups[key] = c
		return c, nil
	}
	c, err := upstream.New(upstream.Config{
		Backend:           backend,
		TLS:               tc,
		DialTimeout:       time.Duration(t.BackendConnect),
		ResponseTimeout:   time.Duration(t.BackendResponse),
		StreamIdleTimeout: time.Duration(t.BackendIdle),
		// backend_pool; zero keeps the client's defaults.
		MaxConns:            pool.MaxConns,
		MaxIdleConnDuration: time.Duration(pool.IdleTimeout),
	})
	if err != nil {
		return nil, err
	}
	ups[key] = c
	return c, nil
}
