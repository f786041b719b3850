// Package testpki mints throwaway certificate authorities, intermediates and
// leaves for tests, at test time. No private key is ever committed.
package testpki
