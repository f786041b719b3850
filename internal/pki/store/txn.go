package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The write transactions of Insert, Revoke and SignCRL, written once for
// both backends. Queries use ? placeholders; pgTx numbers them ($1, $2...)
// for PostgreSQL. The backends differ only in how a transaction starts,
// how a counter is bumped (PostgreSQL also notifies), how a row is locked
// and how a unique violation is told apart.

// txn is one write transaction of either backend.
type txn interface {
	exec(ctx context.Context, q string, args ...any) error
	queryRow(ctx context.Context, q string, args ...any) scanner
	// query returns rows and their close function.
	query(ctx context.Context, q string, args ...any) (rowIter, func(), error)
	// bump increments a counter and returns its new value.
	bump(ctx context.Context, counter string) (int64, error)
	// forUpdate is what locks a selected row until the transaction ends.
	forUpdate() string
}

// insertTx records r (with sans, its encoded SANs) as valid.
func insertTx(ctx context.Context, t txn, r Record, sans string) error {
	if err := t.exec(ctx, `INSERT INTO certificates
		(serial, subject, sans, profile, not_before, not_after, status, issued_at, der)
		VALUES (?, ?, ?, ?, ?, ?, 'valid', ?, ?)`,
		r.Serial, r.Subject, sans, r.Profile,
		r.NotBefore.Unix(), r.NotAfter.Unix(), r.IssuedAt.Unix(), r.DER); err != nil {
		return err
	}
	_, err := t.bump(ctx, "generation")
	return err
}

// revokeTx marks serial revoked and returns its record as it now is.
func revokeTx(ctx context.Context, t txn, serial string, at time.Time, reason int) (Record, error) {
	// forUpdate: two revokers of one serial queue here; the second sees
	// the first's revocation.
	r, err := scanRecord(t.queryRow(ctx, "SELECT "+columns+" FROM certificates WHERE serial = ?"+t.forUpdate(), serial))
	if err != nil {
		return r, err
	}
	if r.Status == StatusRevoked {
		return r, ErrAlreadyRevoked
	}
	if err := t.exec(ctx,
		"UPDATE certificates SET status = 'revoked', revoked_at = ?, reason = ? WHERE serial = ?",
		at.Unix(), reason, serial); err != nil {
		return r, err
	}
	r.Status, r.RevokedAt, r.Reason = StatusRevoked, unixUTC(at.Unix()), reason
	_, err = t.bump(ctx, "generation")
	return r, err
}

// signCRLTx allocates the next CRL number, signs the revoked records with
// it and stores the CRL, keeping a short history only (CRLs grow with the
// revoked list).
func signCRLTx(ctx context.Context, t txn, sign SignCRLFunc) (CRL, error) {
	number, err := t.bump(ctx, "crl_number")
	if err != nil {
		return CRL{}, err
	}
	rows, done, err := t.query(ctx, "SELECT "+columns+" FROM certificates WHERE status = 'revoked' ORDER BY revoked_at, serial")
	if err != nil {
		return CRL{}, err
	}
	revoked, err := scanRecords(rows)
	done()
	if err != nil {
		return CRL{}, err
	}
	crl, err := sign(revoked, number)
	if err != nil {
		return CRL{}, err
	}
	crl.Number = number
	if err := t.exec(ctx, "INSERT INTO crls (number, this_update, next_update, der) VALUES (?, ?, ?, ?)",
		number, crl.ThisUpdate.Unix(), crl.NextUpdate.Unix(), crl.DER); err != nil {
		return CRL{}, err
	}
	if err := t.exec(ctx, "DELETE FROM crls WHERE number <= ?", number-10); err != nil {
		return CRL{}, err
	}
	_, err = t.bump(ctx, "generation")
	return crl, err
}

// sqliteTx is a txn on *sql.Tx.
type sqliteTx struct{ tx *sql.Tx }

func (t sqliteTx) exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.ExecContext(ctx, q, args...)
	return err
}

func (t sqliteTx) queryRow(ctx context.Context, q string, args ...any) scanner {
	return t.tx.QueryRowContext(ctx, q, args...)
}

func (t sqliteTx) query(ctx context.Context, q string, args ...any) (rowIter, func(), error) {
	rows, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, nil, err
	}
	return rows, func() { rows.Close() }, nil
}

func (t sqliteTx) bump(ctx context.Context, counter string) (int64, error) {
	return bump(ctx, t.tx, counter)
}

// forUpdate is empty: SQLite's BEGIN IMMEDIATE already holds the write
// lock.
func (sqliteTx) forUpdate() string { return "" }

// pgTx is a txn on pgx.Tx.
type pgTx struct{ tx pgx.Tx }

func (t pgTx) exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.Exec(ctx, numbered(q), args...)
	return err
}

func (t pgTx) queryRow(ctx context.Context, q string, args ...any) scanner {
	return t.tx.QueryRow(ctx, numbered(q), args...)
}

func (t pgTx) query(ctx context.Context, q string, args ...any) (rowIter, func(), error) {
	rows, err := t.tx.Query(ctx, numbered(q), args...)
	if err != nil {
		return nil, nil, err
	}
	return rows, rows.Close, nil
}

func (t pgTx) bump(ctx context.Context, counter string) (int64, error) {
	return bumpPG(ctx, t.tx, counter)
}

func (pgTx) forUpdate() string { return " FOR UPDATE" }

// numbered turns the ? placeholders of q into PostgreSQL's $1, $2...
// (the queries above hold no other '?').
func numbered(q string) string {
	var b strings.Builder
	n := 0
	for _, part := range strings.SplitAfter(q, "?") {
		if strings.HasSuffix(part, "?") {
			n++
			part = part[:len(part)-1] + fmt.Sprintf("$%d", n)
		}
		b.WriteString(part)
	}
	return b.String()
}
