// Package store is the certificate authority's inventory: every issued
// certificate, its revocation status and the CRLs signed so far, behind the
// Store interface (SQLite embedded today, PostgreSQL for multi-node CAs).
package store
