// Package authz decides, per request, whether a verified client identity may
// use a route: allow rules are validated and precompiled once, then evaluated cheaply.
package authz
