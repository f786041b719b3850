package config

import "time"

// Defaults, named so that docs and tests can refer to them.
const (
	DefaultListen          = ":8443"
	DefaultMinVersion      = "1.2"
	DefaultHSTSMaxAge      = 2 * 365 * 24 * time.Hour
	DefaultCRLRefresh      = time.Minute
	DefaultHandshake       = 10 * time.Second
	DefaultReadHeader      = 10 * time.Second
	DefaultIdle            = 2 * time.Minute
	DefaultBackendConnect  = 5 * time.Second
	DefaultBackendResponse = 60 * time.Second
	DefaultBackendIdle     = 5 * time.Minute
	DefaultShutdown        = 30 * time.Second
	DefaultMaxHeaderBytes  = 64 << 10
	DefaultMaxBody         = 10 << 20
	DefaultMaxChainLength  = 4
	MaxMaxChainLength      = 10
	DefaultMaxCRLSize      = 8 << 20
	MaxMaxCRLSize          = 256 << 20
	DefaultBodyIdle        = 10 * time.Second
	DefaultMinBodyRate     = 1 << 10
	DefaultMaxStreams      = 100
	DefaultBackendConns    = 16
)

// ApplyDefaults replaces zero values with safe defaults. It is the only
// step after decoding that changes the configuration.
func (c *Config) ApplyDefaults() {
	setDefault(&c.Listen, DefaultListen)
	setDefault(&c.ServerTLS.MinVersion, DefaultMinVersion)
	setDefault(&c.ClientAuth.Mode, ModeRequire)
	setDefault(&c.ClientAuth.Revocation.OCSP, "off")
	setDefault(&c.ClientAuth.Revocation.Unavailable, "reject")
	setDefault(&c.ClientAuth.Revocation.Refresh, Duration(DefaultCRLRefresh))
	setDefault(&c.ClientAuth.Revocation.MaxCRLSize, Size(DefaultMaxCRLSize))
	setDefault(&c.ClientAuth.MaxChainLength, DefaultMaxChainLength)
	if c.ClientAuth.Mode == ModeOptional {
		setDefault(&c.ClientAuth.Refusal, RefusalHTTP)
	}
	setDefault(&c.ClientAuth.Refusal, RefusalTLS)
	setDefault(&c.HSTS.MaxAge, Duration(DefaultHSTSMaxAge))
	setDefault(&c.Timeouts.Handshake, Duration(DefaultHandshake))
	setDefault(&c.Timeouts.ReadHeader, Duration(DefaultReadHeader))
	setDefault(&c.Timeouts.Idle, Duration(DefaultIdle))
	setDefault(&c.Timeouts.BackendConnect, Duration(DefaultBackendConnect))
	setDefault(&c.Timeouts.BackendResponse, Duration(DefaultBackendResponse))
	setDefault(&c.Timeouts.BackendIdle, Duration(DefaultBackendIdle))
	setDefault(&c.Timeouts.Shutdown, Duration(DefaultShutdown))
	setDefault(&c.Limits.MaxHeaderBytes, Size(DefaultMaxHeaderBytes))
	setDefault(&c.Limits.MaxBody, Size(DefaultMaxBody))
	setDefault(&c.Timeouts.BodyIdle, Duration(DefaultBodyIdle))
	setDefault(&c.Limits.MinBodyRate, Size(DefaultMinBodyRate))
	setDefault(&c.Limits.MaxStreams, DefaultMaxStreams)
	setDefault(&c.Limits.BackendConnsPerClient, DefaultBackendConns)
	setDefault(&c.Log.Level, "info")
	setDefault(&c.Log.Audit, "stdout")
	setDefault(&c.Log.Format, "text")
	c.applyProtectionDefaults()
	for i := range c.Routes {
		r := &c.Routes[i]
		setDefault(&r.Path, "/")
		setDefault(&r.MaxBody, c.Limits.MaxBody)
		if r.RequireClientCert == nil {
			t := true
			r.RequireClientCert = &t
		}
	}
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// Requires reports whether the route requires a client certificate.
func (r *Route) Requires() bool { return r.RequireClientCert == nil || *r.RequireClientCert }
