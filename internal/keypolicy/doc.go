// Package keypolicy is the one key policy for client certificates: what
// the CA issues and what the gateway accepts are the same set of keys.
package keypolicy
