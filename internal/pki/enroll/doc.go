// Package enroll is the CA's enrollment API over HTTPS: first certificates
// for holders of a one-time token, renewal authenticated by the current
// certificate, EST (RFC 7030) for devices, and the client and background
// renewer that keep a certificate fresh without a person.
package enroll
