// Package serial formats certificate serial numbers as openssl prints them
// and parses them in any of the forms users paste.
package serial
