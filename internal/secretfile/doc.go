// Package secretfile reads a passphrase, password, PIN or token from a
// file, by the one rule every gatehouse secret file follows (Read).
package secretfile
