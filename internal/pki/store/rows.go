package store

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The SQL and row decoding both backends share: SQLite and PostgreSQL
// hold the same columns, and *sql.Row(s) and pgx.Row(s) scan alike.

const columns = `serial, subject, sans, profile, not_before, not_after, status,
	revoked_at, reason, issued_at, der`

// scanner is *sql.Row, *sql.Rows, pgx.Row or pgx.Rows.
type scanner interface{ Scan(...any) error }

// rowIter is *sql.Rows or pgx.Rows.
type rowIter interface {
	scanner
	Next() bool
	Err() error
}

// scanRecord decodes one row of columns.
func scanRecord(row scanner) (Record, error) {
	var (
		r                 Record
		sans, status      string
		nb, na, issued    int64
		revokedAt, reason *int64
	)
	if err := row.Scan(&r.Serial, &r.Subject, &sans, &r.Profile, &nb, &na, &status,
		&revokedAt, &reason, &issued, &r.DER); err != nil {
		return Record{}, err
	}
	if err := json.Unmarshal([]byte(sans), &r.SANs); err != nil {
		return Record{}, fmt.Errorf("decode SANs of %s: %w", r.Serial, err)
	}
	r.Status = Status(status)
	r.NotBefore, r.NotAfter, r.IssuedAt = unixUTC(nb), unixUTC(na), unixUTC(issued)
	if revokedAt != nil {
		r.RevokedAt = unixUTC(*revokedAt)
	}
	if reason != nil {
		r.Reason = int(*reason)
	}
	return r, nil
}

// scanRecords decodes every row of columns; the caller closes rows.
func scanRecords(rows rowIter) ([]Record, error) {
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// listQuery is the SELECT for f; placeholder(n) is the n-th (from 1)
// parameter marker of the backend's dialect.
func listQuery(f Filter, placeholder func(n int) string) (string, []any) {
	var (
		where []string
		args  []any
	)
	if f.Revoked {
		where = append(where, "status = 'revoked'")
	}
	if !f.NotAfterBefore.IsZero() {
		args = append(args, f.NotAfterBefore.Unix())
		where = append(where, "not_after < "+placeholder(len(args)))
		if !f.Revoked {
			where = append(where, "status = 'valid'")
		}
	}
	q := "SELECT " + columns + " FROM certificates"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	return q + " ORDER BY not_after, serial", args
}

// scanEnrollments decodes rows of serial, method, requester, remote, at;
// the caller closes rows.
func scanEnrollments(rows rowIter) ([]Enrollment, error) {
	var out []Enrollment
	for rows.Next() {
		var (
			e  Enrollment
			at int64
		)
		if err := rows.Scan(&e.Serial, &e.Method, &e.Requester, &e.Remote, &at); err != nil {
			return nil, err
		}
		e.At = unixUTC(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// encodeSANs is the sans column of r: a JSON array, never null.
func encodeSANs(r Record) (string, error) {
	sans := r.SANs
	if sans == nil {
		sans = []string{}
	}
	b, err := json.Marshal(sans)
	return string(b), err
}

func unixUTC(sec int64) time.Time { return time.Unix(sec, 0).UTC() }
