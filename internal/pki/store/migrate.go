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
	// UsedTokens are the spent enrollment tokens (each refused if
	// presented again); Enrollments the records of who asked for what.
	UsedTokens, Enrollments int64
}

func (c Counts) String() string {
	return fmt.Sprintf("%d certificates (%d revoked), %d stored CRLs, CRL number %d, %d spent enrollment tokens, %d enrollment records",
		c.Certificates, c.Revoked, c.CRLs, c.CRLNumber, c.UsedTokens, c.Enrollments)
}

const countsQuery = `SELECT
	(SELECT COUNT(*) FROM certificates),
	(SELECT COUNT(*) FROM certificates WHERE status = 'revoked'),
	(SELECT COUNT(*) FROM crls),
	(SELECT value FROM counters WHERE name = 'crl_number'),
	(SELECT value FROM counters WHERE name = 'generation'),
	(SELECT COUNT(*) FROM used_tokens),
	(SELECT COUNT(*) FROM enrollments)`

func scanCounts(row scanner) (Counts, error) {
	var c Counts
	err := row.Scan(&c.Certificates, &c.Revoked, &c.CRLs, &c.CRLNumber, &c.Generation, &c.UsedTokens, &c.Enrollments)
	return c, err
}

// MoveToPostgres copies everything in src (certificates with their
// status, the stored CRLs, the CRL number and generation, the spent
// enrollment tokens, so that none can be replayed after the move, and the
// enrollment records) into dst, which
// must be empty, in one PostgreSQL transaction, and checks that the counts
// match. src's write lock is held throughout, so no `ca issue` or `ca
// revoke` can slip in; done runs before it is released (the caller points
// the CA at dst there), so that nothing is written to src afterwards.
func MoveToPostgres(ctx context.Context, src *SQLite, dst *Postgres, done func() error) (Counts, error) {
	var moved Counts
	err := src.tx(ctx, func(stx *sql.Tx) error {
		// SQLite creates the enrollment tables on first use; an inventory
		// that never served the enrollment API has none (this transaction
		// is rolled back, so nothing is left of them).
		if _, err := stx.ExecContext(ctx, enrollSchema); err != nil {
			return fmt.Errorf("read source: %w", err)
		}
		from, err := scanCounts(stx.QueryRowContext(ctx, countsQuery))
		if err != nil {
			return fmt.Errorf("count source: %w", err)
		}
		err = pgx.BeginFunc(ctx, dst.pool, func(ptx pgx.Tx) error {
			// No other writer while the target is checked and filled.
			if _, err := ptx.Exec(ctx, "LOCK TABLE certificates, crls, counters, used_tokens, enrollments IN EXCLUSIVE MODE"); err != nil {
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
			if err := copyEnrollments(ctx, stx, ptx); err != nil {
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

// copyEnrollments copies the spent tokens and the enrollment records, the
// latter in the order they were made.
func copyEnrollments(ctx context.Context, stx *sql.Tx, ptx pgx.Tx) error {
	tokens, err := stx.QueryContext(ctx, "SELECT id, used_at, expires FROM used_tokens ORDER BY id")
	if err != nil {
		return err
	}
	defer tokens.Close()
	for tokens.Next() {
		var id string
		var usedAt, expires int64
		if err := tokens.Scan(&id, &usedAt, &expires); err != nil {
			return err
		}
		if _, err := ptx.Exec(ctx, "INSERT INTO used_tokens (id, used_at, expires) VALUES ($1, $2, $3)", id, usedAt, expires); err != nil {
			return fmt.Errorf("copy spent token %s: %w", id, err)
		}
	}
	if err := tokens.Err(); err != nil {
		return err
	}
	ens, err := stx.QueryContext(ctx, "SELECT serial, method, requester, remote, at FROM enrollments ORDER BY at, rowid")
	if err != nil {
		return err
	}
	defer ens.Close()
	for ens.Next() {
		var serial, method, requester, remote string
		var at int64
		if err := ens.Scan(&serial, &method, &requester, &remote, &at); err != nil {
			return err
		}
		if _, err := ptx.Exec(ctx, "INSERT INTO enrollments (serial, method, requester, remote, at) VALUES ($1, $2, $3, $4, $5)",
			serial, method, requester, remote, at); err != nil {
			return fmt.Errorf("copy enrollment of %s: %w", serial, err)
		}
	}
	return ens.Err()
}
