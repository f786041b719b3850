package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Counts are what an inventory holds, compared before and after a move.
type Counts struct {
	Certificates, Revoked, CRLs int64
	CRLNumber, Generation       int64
}

func (c Counts) String() string {
	return fmt.Sprintf("%d certificates (%d revoked), %d stored CRLs, CRL number %d",
		c.Certificates, c.Revoked, c.CRLs, c.CRLNumber)
}

const countsQuery = `SELECT
	(SELECT COUNT(*) FROM certificates),
	(SELECT COUNT(*) FROM certificates WHERE status = 'revoked'),
	(SELECT COUNT(*) FROM crls),
	(SELECT value FROM counters WHERE name = 'crl_number'),
	(SELECT value FROM counters WHERE name = 'generation')`

func scanCounts(row scanner) (Counts, error) {
	var c Counts
	err := row.Scan(&c.Certificates, &c.Revoked, &c.CRLs, &c.CRLNumber, &c.Generation)
	return c, err
}

// MoveToPostgres copies everything in src (certificates with their
// status, the stored CRLs, the CRL number and generation) into dst, which
// must be empty, in one PostgreSQL transaction, and checks that the counts
// match. src's write lock is held throughout, so no `ca issue` or `ca
// revoke` can slip in; done runs before it is released (the caller points
// the CA at dst there), so that nothing is written to src afterwards.
func MoveToPostgres(ctx context.Context, src *SQLite, dst *Postgres, done func() error) (Counts, error) {
	var moved Counts
	err := src.tx(ctx, func(stx *sql.Tx) error {
		from, err := scanCounts(stx.QueryRowContext(ctx, countsQuery))
		if err != nil {
			return fmt.Errorf("count source: %w", err)
		}
		err = pgx.BeginFunc(ctx, dst.pool, func(ptx pgx.Tx) error {
			// No other writer while the target is checked and filled.
			if _, err := ptx.Exec(ctx, "LOCK TABLE certificates, crls, counters IN EXCLUSIVE MODE"); err != nil {
				return err
			}
			to, err := scanCounts(ptx.QueryRow(ctx, countsQuery))
			if err != nil {
				return fmt.Errorf("count target: %w", err)
			}
			if to != (Counts{}) {
				return fmt.Errorf("the PostgreSQL inventory is not empty (%s): move into a new database", to)
			}
			rows, err := stx.QueryContext(ctx, "SELECT "+columns+" FROM certificates ORDER BY serial")
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				r, err := scanRecord(rows)
				if err != nil {
					return err
				}
				var revokedAt, reason any
				if r.Status == StatusRevoked {
					revokedAt, reason = r.RevokedAt.Unix(), r.Reason
				}
				sans, err := encodeSANs(r)
				if err != nil {
					return err
				}
				if _, err := ptx.Exec(ctx, `INSERT INTO certificates (`+columns+`)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
					r.Serial, r.Subject, sans, r.Profile, r.NotBefore.Unix(), r.NotAfter.Unix(),
					string(r.Status), revokedAt, reason, r.IssuedAt.Unix(), r.DER); err != nil {
					return fmt.Errorf("copy %s: %w", r.Serial, err)
				}
			}
			if err := rows.Err(); err != nil {
				return err
			}
			crls, err := stx.QueryContext(ctx, "SELECT number, this_update, next_update, der FROM crls")
			if err != nil {
				return err
			}
			defer crls.Close()
			for crls.Next() {
				var n, tu, nu int64
				var der []byte
				if err := crls.Scan(&n, &tu, &nu, &der); err != nil {
					return err
				}
				if _, err := ptx.Exec(ctx, "INSERT INTO crls (number, this_update, next_update, der) VALUES ($1, $2, $3, $4)", n, tu, nu, der); err != nil {
					return fmt.Errorf("copy CRL %d: %w", n, err)
				}
			}
			if err := crls.Err(); err != nil {
				return err
			}
			for name, v := range map[string]int64{"crl_number": from.CRLNumber, "generation": from.Generation} {
				if _, err := ptx.Exec(ctx, "UPDATE counters SET value = $1 WHERE name = $2", v, name); err != nil {
					return err
				}
			}
			if moved, err = scanCounts(ptx.QueryRow(ctx, countsQuery)); err != nil {
				return fmt.Errorf("count target: %w", err)
			}
			if moved != from {
				return fmt.Errorf("counts differ after the copy: source %s, target %s; nothing was committed", from, moved)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := done(); err != nil {
			return fmt.Errorf("the inventory was copied to PostgreSQL, but %w", err)
		}
		// Roll the SQLite transaction back: it only held the lock.
		return errReadOnly
	})
	if errors.Is(err, errReadOnly) {
		err = nil
	}
	if err != nil {
		return Counts{}, fmt.Errorf("move inventory to PostgreSQL: %w", err)
	}
	return moved, nil
}

var errReadOnly = errors.New("read-only transaction")
