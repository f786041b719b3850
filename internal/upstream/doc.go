// Package upstream is the backend client: one keep-alive pool per backend
// and upstream TLS setting (fasthttp's HostClient, used by every engine),
// and raw connections for tunnels. It knows no policy; the pipeline
// decided what is sent.
package upstream
