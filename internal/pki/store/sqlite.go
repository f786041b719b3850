package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// schemaVersion is stored in PRAGMA user_version.
const schemaVersion = 1

const schema = `
CREATE TABLE IF NOT EXISTS certificates (
	serial     TEXT PRIMARY KEY,
	subject    TEXT NOT NULL,
	sans       TEXT NOT NULL,
	profile    TEXT NOT NULL,
	not_before INTEGER NOT NULL,
	not_after  INTEGER NOT NULL,
	status     TEXT NOT NULL CHECK (status IN ('valid', 'revoked')),
	revoked_at INTEGER,
	reason     INTEGER,
	issued_at  INTEGER NOT NULL,
	der        BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS certificates_not_after ON certificates (not_after);
CREATE TABLE IF NOT EXISTS counters (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters (name, value) VALUES ('generation', 0), ('crl_number', 0);
CREATE TABLE IF NOT EXISTS crls (
	number      INTEGER PRIMARY KEY,
	this_update INTEGER NOT NULL,
	next_update INTEGER NOT NULL,
	der         BLOB NOT NULL
);
`

// SQLite is the embedded Store: one database file, safe for several
// processes (WAL journal, write transactions that take the lock up front,
// and a busy timeout so that writers wait for each other).
type SQLite struct {
	db *sql.DB
}

// OpenSQLite opens (creating if needed) the inventory database at path.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	q := url.Values{}
	// busy_timeout first: the others may already need to wait for a lock.
	q.Add("_pragma", "busy_timeout(30000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	// BEGIN IMMEDIATE: a write transaction holds the write lock from its
	// start, so two issuers never both read then fail to upgrade.
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open inventory %s: %w", path, err)
	}
	s := &SQLite{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open inventory %s: %w", path, err)
	}
	return s, nil
}

func (s *SQLite) migrate(ctx context.Context) error {
	var v int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v == schemaVersion {
		return nil
	}
	if v > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this gatehouse supports (%d)", v, schemaVersion)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, schema); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion))
		return err
	})
}

// tx runs f in a write transaction and commits it if f returns nil.
func (s *SQLite) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func bump(ctx context.Context, tx *sql.Tx, counter string) (int64, error) {
	var v int64
	err := tx.QueryRowContext(ctx,
		"UPDATE counters SET value = value + 1 WHERE name = ? RETURNING value", counter).Scan(&v)
	return v, err
}

// Insert implements Store.
func (s *SQLite) Insert(ctx context.Context, r Record) error {
	sans, err := encodeSANs(r)
	if err != nil {
		return fmt.Errorf("insert %s: %w", r.Serial, err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error { return insertTx(ctx, sqliteTx{tx}, r, sans) })
	if isConstraint(err) {
		return fmt.Errorf("insert %s: %w", r.Serial, ErrDuplicateSerial)
	}
	if err != nil {
		return fmt.Errorf("insert %s: %w", r.Serial, err)
	}
	return nil
}

func isConstraint(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}

// Get implements Store.
func (s *SQLite) Get(ctx context.Context, serial string) (Record, error) {
	r, err := scanRecord(s.db.QueryRowContext(ctx,
		"SELECT "+columns+" FROM certificates WHERE serial = ?", serial))
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, fmt.Errorf("get %s: %w", serial, ErrNotFound)
	}
	if err != nil {
		return Record{}, fmt.Errorf("get %s: %w", serial, err)
	}
	return r, nil
}

// List implements Store.
func (s *SQLite) List(ctx context.Context, f Filter) ([]Record, error) {
	q, args := listQuery(f, func(int) string { return "?" })
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	defer rows.Close()
	out, err := scanRecords(rows)
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	return out, nil
}

// Revoke implements Store.
func (s *SQLite) Revoke(ctx context.Context, serial string, at time.Time, reason int) (Record, error) {
	var r Record
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		r, err = revokeTx(ctx, sqliteTx{tx}, serial, at, reason)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		return err
	})
	if err != nil {
		return r, fmt.Errorf("revoke %s: %w", serial, err)
	}
	return r, nil
}

// Generation implements Store.
func (s *SQLite) Generation(ctx context.Context) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, "SELECT value FROM counters WHERE name = 'generation'").Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read generation: %w", err)
	}
	return v, nil
}

// SignCRL implements Store.
func (s *SQLite) SignCRL(ctx context.Context, sign SignCRLFunc) (CRL, error) {
	var crl CRL
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		crl, err = signCRLTx(ctx, sqliteTx{tx}, sign)
		return err
	})
	if err != nil {
		return CRL{}, fmt.Errorf("sign CRL: %w", err)
	}
	return crl, nil
}

// LatestCRL implements Store.
func (s *SQLite) LatestCRL(ctx context.Context) (CRL, error) {
	var (
		c      CRL
		tu, nu int64
	)
	err := s.db.QueryRowContext(ctx,
		"SELECT number, this_update, next_update, der FROM crls ORDER BY number DESC LIMIT 1").
		Scan(&c.Number, &tu, &nu, &c.DER)
	if errors.Is(err, sql.ErrNoRows) {
		return CRL{}, fmt.Errorf("latest CRL: %w", ErrNotFound)
	}
	if err != nil {
		return CRL{}, fmt.Errorf("latest CRL: %w", err)
	}
	c.ThisUpdate, c.NextUpdate = unixUTC(tu), unixUTC(nu)
	return c, nil
}

// Close implements Store.
func (s *SQLite) Close() error { return s.db.Close() }

var _ Store = (*SQLite)(nil)
