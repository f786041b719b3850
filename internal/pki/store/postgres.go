package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are the PostgreSQL schema, one step per version, applied in
// order at start in one transaction under an advisory lock, so that
// replicas starting together apply each step once. Never edit a step that
// shipped: add the next one.
var migrations = []string{
	1: `
CREATE TABLE certificates (
	serial     TEXT PRIMARY KEY,
	subject    TEXT NOT NULL,
	sans       TEXT NOT NULL,
	profile    TEXT NOT NULL,
	not_before BIGINT NOT NULL,
	not_after  BIGINT NOT NULL,
	status     TEXT NOT NULL CHECK (status IN ('valid', 'revoked')),
	revoked_at BIGINT,
	reason     INTEGER,
	issued_at  BIGINT NOT NULL,
	der        BYTEA NOT NULL
);
CREATE INDEX certificates_not_after ON certificates (not_after);
CREATE INDEX certificates_revoked ON certificates (status) WHERE status = 'revoked';
CREATE TABLE counters (
	name  TEXT PRIMARY KEY,
	value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('generation', 0), ('crl_number', 0);
CREATE TABLE crls (
	number      BIGINT PRIMARY KEY,
	this_update BIGINT NOT NULL,
	next_update BIGINT NOT NULL,
	der         BYTEA NOT NULL
);`,
	2: enrollSchemaPG,
}

// migrationLock is the pg_advisory_xact_lock key that serializes schema
// migrations ("gatehous" in ASCII).
const migrationLock = 0x6761746568F075

// notifyChannel is the LISTEN/NOTIFY channel on which every change to the
// inventory is announced, when its transaction commits.
const notifyChannel = "gatehouse_inventory"

// Postgres is the Store for CAs served by several machines: one PostgreSQL
// database. Serial uniqueness is the primary key; issuance, revocation and
// CRL signing are transactions; the CRL number is a counter row updated in
// the CRL's own transaction, so that concurrent signers from any number of
// processes get consecutive numbers, never a gap or a duplicate.
type Postgres struct {
	pool *pgxpool.Pool
	url  string
}

// OpenPostgres connects to the database at url (a postgres:// URL or a
// key=value DSN; a password comes from ~/.pgpass, PGPASSFILE or
// passfile=) and applies any pending schema migration.
func OpenPostgres(ctx context.Context, url string) (*Postgres, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("open inventory %s: %w", Redact(url), err)
	}
	s := &Postgres{pool: pool, url: url}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open inventory %s: %w", Redact(url), err)
	}
	return s, nil
}

// Redact returns a PostgreSQL URL fit to quote in a message: a password
// in its user part or in a password= parameter is replaced by "xxxxx". A
// key=value DSN, or anything that does not parse as a URL, is not quoted
// at all.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return "(PostgreSQL DSN)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// SchemaVersion is the newest PostgreSQL schema this gatehouse knows.
func SchemaVersion() int { return len(migrations) - 1 }

func (s *Postgres) migrate(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS gatehouse_schema (
			version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var v int
		if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM gatehouse_schema").Scan(&v); err != nil {
			return err
		}
		if v > SchemaVersion() {
			return fmt.Errorf("schema version %d is newer than this gatehouse supports (%d)", v, SchemaVersion())
		}
		for n := v + 1; n <= SchemaVersion(); n++ {
			if _, err := tx.Exec(ctx, migrations[n]); err != nil {
				return fmt.Errorf("migration %d: %w", n, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO gatehouse_schema (version) VALUES ($1)", n); err != nil {
				return err
			}
		}
		return nil
	})
}

// bumpPG increments a counter, holding its row lock until the transaction
// ends, and announces the change to listeners at commit.
func bumpPG(ctx context.Context, tx pgx.Tx, counter string) (int64, error) {
	var v int64
	if err := tx.QueryRow(ctx, "UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value", counter).Scan(&v); err != nil {
		return 0, err
	}
	if counter == "generation" {
		if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", notifyChannel, fmt.Sprint(v)); err != nil {
			return 0, err
		}
	}
	return v, nil
}

// Insert implements Store.
func (s *Postgres) Insert(ctx context.Context, r Record) error {
	sans, err := encodeSANs(r)
	if err != nil {
		return fmt.Errorf("insert %s: %w", r.Serial, err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return insertTx(ctx, pgTx{tx}, r, sans) })
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		return fmt.Errorf("insert %s: %w", r.Serial, ErrDuplicateSerial)
	}
	if err != nil {
		return fmt.Errorf("insert %s: %w", r.Serial, err)
	}
	return nil
}

// Get implements Store.
func (s *Postgres) Get(ctx context.Context, serial string) (Record, error) {
	r, err := scanRecord(s.pool.QueryRow(ctx, "SELECT "+columns+" FROM certificates WHERE serial = $1", serial))
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, fmt.Errorf("get %s: %w", serial, ErrNotFound)
	}
	if err != nil {
		return Record{}, fmt.Errorf("get %s: %w", serial, err)
	}
	return r, nil
}

// List implements Store.
func (s *Postgres) List(ctx context.Context, f Filter) ([]Record, error) {
	q, args := listQuery(f, func(n int) string { return fmt.Sprintf("$%d", n) })
	rows, err := s.pool.Query(ctx, q, args...)
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
func (s *Postgres) Revoke(ctx context.Context, serial string, at time.Time, reason int) (Record, error) {
	var r Record
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		r, err = revokeTx(ctx, pgTx{tx}, serial, at, reason)
		if errors.Is(err, pgx.ErrNoRows) {
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
func (s *Postgres) Generation(ctx context.Context) (int64, error) {
	var v int64
	if err := s.pool.QueryRow(ctx, "SELECT value FROM counters WHERE name = 'generation'").Scan(&v); err != nil {
		return 0, fmt.Errorf("read generation: %w", err)
	}
	return v, nil
}

// SignCRL implements Store. The crl_number row stays locked from the
// number's allocation to the commit: a second signer, in this process or
// another, waits, then reads the revocations with a fresh snapshot (READ
// COMMITTED) and gets the next number. A failed signature rolls the number
// back, so there is no gap.
func (s *Postgres) SignCRL(ctx context.Context, sign SignCRLFunc) (CRL, error) {
	var crl CRL
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		crl, err = signCRLTx(ctx, pgTx{tx}, sign)
		return err
	})
	if err != nil {
		return CRL{}, fmt.Errorf("sign CRL: %w", err)
	}
	return crl, nil
}

// LatestCRL implements Store.
func (s *Postgres) LatestCRL(ctx context.Context) (CRL, error) {
	var (
		c      CRL
		tu, nu int64
	)
	err := s.pool.QueryRow(ctx, "SELECT number, this_update, next_update, der FROM crls ORDER BY number DESC LIMIT 1").
		Scan(&c.Number, &tu, &nu, &c.DER)
	if errors.Is(err, pgx.ErrNoRows) {
		return CRL{}, fmt.Errorf("latest CRL: %w", ErrNotFound)
	}
	if err != nil {
		return CRL{}, fmt.Errorf("latest CRL: %w", err)
	}
	c.ThisUpdate, c.NextUpdate = unixUTC(tu), unixUTC(nu)
	return c, nil
}

// Watch implements Watcher with LISTEN on a connection of its own: a
// value arrives on the channel soon after any process commits a change.
// On a lost connection it reconnects after a second; callers should keep
// polling Generation as a safety net. The channel closes when ctx is done.
func (s *Postgres) Watch(ctx context.Context, log *slog.Logger) <-chan struct{} {
	ch := make(chan struct{}, 1)
	go func() {
		defer close(ch)
		for ctx.Err() == nil {
			err := s.listen(ctx, ch)
			if ctx.Err() != nil {
				return
			}
			log.Warn("inventory: LISTEN connection lost; reconnecting", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
	return ch
}

func (s *Postgres) listen(ctx context.Context, ch chan<- struct{}) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection is dedicated to LISTEN: it never goes back to the
	// pool.
	c := conn.Hijack()
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	for {
		if _, err := c.WaitForNotification(ctx); err != nil {
			return err
		}
		select {
		case ch <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

// Close implements Store.
func (s *Postgres) Close() error {
	s.pool.Close()
	return nil
}

var _ Store = (*Postgres)(nil)
