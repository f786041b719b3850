package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// enrollSchemaPG is PostgreSQL migration 2: the enrollment API's tables,
// as in enrollSchema.
const enrollSchemaPG = `
CREATE TABLE used_tokens (
	id      TEXT PRIMARY KEY,
	used_at BIGINT NOT NULL,
	expires BIGINT NOT NULL
);
CREATE TABLE enrollments (
	id        BIGSERIAL PRIMARY KEY,
	serial    TEXT NOT NULL,
	method    TEXT NOT NULL,
	requester TEXT NOT NULL,
	remote    TEXT NOT NULL,
	at        BIGINT NOT NULL
);
CREATE INDEX enrollments_serial ON enrollments (serial);`

// UseToken implements EnrollmentStore. The primary key makes a token
// single use across every replica serving the inventory.
func (s *Postgres) UseToken(ctx context.Context, id string, expires time.Time) error {
	now := time.Now()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM used_tokens WHERE expires < $1", now.Add(-24*time.Hour).Unix()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO used_tokens (id, used_at, expires) VALUES ($1, $2, $3)", id, now.Unix(), expires.Unix())
		return err
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		return fmt.Errorf("use token %s: %w", id, ErrTokenUsed)
	}
	if err != nil {
		return fmt.Errorf("use token %s: %w", id, err)
	}
	return nil
}

// RecordEnrollment implements EnrollmentStore.
func (s *Postgres) RecordEnrollment(ctx context.Context, e Enrollment) error {
	_, err := s.pool.Exec(ctx, "INSERT INTO enrollments (serial, method, requester, remote, at) VALUES ($1, $2, $3, $4, $5)",
		e.Serial, e.Method, e.Requester, e.Remote, e.At.Unix())
	if err != nil {
		return fmt.Errorf("record enrollment of %s: %w", e.Serial, err)
	}
	return nil
}

// Enrollments implements EnrollmentStore.
func (s *Postgres) Enrollments(ctx context.Context, serial string) ([]Enrollment, error) {
	q, args := "SELECT serial, method, requester, remote, at FROM enrollments", []any{}
	if serial != "" {
		q += " WHERE serial = $1"
		args = append(args, serial)
	}
	rows, err := s.pool.Query(ctx, q+" ORDER BY at, id", args...)
	if err != nil {
		return nil, fmt.Errorf("list enrollments: %w", err)
	}
	defer rows.Close()
	out, err := scanEnrollments(rows)
	if err != nil {
		return nil, fmt.Errorf("list enrollments: %w", err)
	}
	return out, nil
}

var _ EnrollmentStore = (*Postgres)(nil)
