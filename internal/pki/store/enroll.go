package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrTokenUsed means an enrollment token was presented before: tokens are
// single use.
var ErrTokenUsed = errors.New("enrollment token already used")

// Enrollment records who asked for a certificate through the enrollment
// API and from where.
type Enrollment struct {
	// Serial is the issued certificate (FormatSerial).
	Serial string
	// Method is "token", "renew", "est-enroll" or "est-reenroll".
	Method string
	// Requester is the token id or the serial of the renewing certificate.
	Requester string
	// Remote is the client's address.
	Remote string
	// At is when the certificate was issued.
	At time.Time
}

// EnrollmentStore is implemented by stores that back the enrollment API:
// single-use tokens that stay used across restarts, and the record of who
// asked for what.
type EnrollmentStore interface {
	// UseToken marks token id used; it returns ErrTokenUsed if it was.
	// expires lets the store forget ids of tokens that can no longer be
	// presented anyway.
	UseToken(ctx context.Context, id string, expires time.Time) error
	// RecordEnrollment stores e.
	RecordEnrollment(ctx context.Context, e Enrollment) error
	// Enrollments lists the enrollments of serial, or all when serial is
	// empty, oldest first.
	Enrollments(ctx context.Context, serial string) ([]Enrollment, error)
}

// enrollSchema is created on first use, so that inventories made before
// the enrollment API need no migration step.
const enrollSchema = `
CREATE TABLE IF NOT EXISTS used_tokens (
	id      TEXT PRIMARY KEY,
	used_at INTEGER NOT NULL,
	expires INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS enrollments (
	serial    TEXT NOT NULL,
	method    TEXT NOT NULL,
	requester TEXT NOT NULL,
	remote    TEXT NOT NULL,
	at        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS enrollments_serial ON enrollments (serial);
`

// UseToken implements EnrollmentStore.
func (s *SQLite) UseToken(ctx context.Context, id string, expires time.Time) error {
	now := time.Now()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, enrollSchema); err != nil {
			return err
		}
		// Forget ids that expired a day ago: their tokens are refused for
		// expiry before the store is asked.
		if _, err := tx.ExecContext(ctx, "DELETE FROM used_tokens WHERE expires < ?", now.Add(-24*time.Hour).Unix()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO used_tokens (id, used_at, expires) VALUES (?, ?, ?)",
			id, now.Unix(), expires.Unix())
		return err
	})
	if isConstraint(err) {
		return fmt.Errorf("use token %s: %w", id, ErrTokenUsed)
	}
	if err != nil {
		return fmt.Errorf("use token %s: %w", id, err)
	}
	return nil
}

// RecordEnrollment implements EnrollmentStore.
func (s *SQLite) RecordEnrollment(ctx context.Context, e Enrollment) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, enrollSchema); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO enrollments (serial, method, requester, remote, at) VALUES (?, ?, ?, ?, ?)",
			e.Serial, e.Method, e.Requester, e.Remote, e.At.Unix())
		return err
	})
	if err != nil {
		return fmt.Errorf("record enrollment of %s: %w", e.Serial, err)
	}
	return nil
}

// Enrollments implements EnrollmentStore.
func (s *SQLite) Enrollments(ctx context.Context, serial string) ([]Enrollment, error) {
	var out []Enrollment
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, enrollSchema); err != nil {
			return err
		}
		q, args := "SELECT serial, method, requester, remote, at FROM enrollments", []any{}
		if serial != "" {
			q += " WHERE serial = ?"
			args = append(args, serial)
		}
		rows, err := tx.QueryContext(ctx, q+" ORDER BY at, rowid", args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		out, err = scanEnrollments(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list enrollments: %w", err)
	}
	return out, nil
}

var _ EnrollmentStore = (*SQLite)(nil)
