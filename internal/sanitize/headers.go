package sanitize

import "net/http"

// identityExact are header names (lower case, "-" form) that carry client
// identity and are removed as whole names.
var identityExact = []string{
	"client-cert",       // RFC 9440
	"client-cert-chain", // RFC 9440
	"x-arr-clientcert",  // IIS Application Request Routing, Azure App Service
}

// identityPrefixes are name prefixes (lower case, "-" form) of headers that
// carry client identity. A prefix ending in "-" covers a family; the others
// also cover their own exact name.
var identityPrefixes = []string{
	"x-forwarded-client-cert",     // Envoy XFCC and variants (-chain, ...)
	"x-forwarded-tls-client-cert", // Traefik (-info)
	"x-client-",                   // X-Client-Cert, X-Client-Verify, X-Client-DN, ...
	"x-ssl-",                      // HAProxy/nginx habits: X-SSL-Client-*, X-SSL-Cert, ...
	"ssl-client-",                 // Apache mod_ssl names forwarded as headers
	"x-amzn-mtls-",                // AWS ALB mTLS passthrough
	"cf-client-cert-",             // Cloudflare mTLS fields
}

// IsIdentityHeader reports whether name could be taken by a backend for an
// identity header, comparing ASCII case-insensitively and treating "_" as
// "-". It does not allocate.
func IsIdentityHeader(name string) bool { return isIdentity(name) }

// StripIdentityHeaders deletes every header of h for which IsIdentityHeader
// is true. It looks at every key as stored, because http.Header keeps names
// that are not canonical (such as "x_client_cert" sent by a client) as they
// arrived, where h.Del would miss them.
func StripIdentityHeaders(h http.Header) {
	for name := range h {
		if IsIdentityHeader(name) {
			delete(h, name)
		}
	}
}
