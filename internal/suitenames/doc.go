// Package suitenames is the one table of TLS cipher suite names: each
// code point with its IANA and OpenSSL names, for the scanner and the
// configuration's cipher_suites.
package suitenames
