package pki

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/gatehouse/gatehouse/internal/pki/store"
)

// MigrateToPostgres moves the SQLite inventory of the CA in dir into the
// empty PostgreSQL database at url, checks that every certificate,
// revocation and CRL arrived (the counts match, in the same transaction),
// and then records url in ca.json, all while the SQLite inventory is
// locked against writers. DIR/inventory.db is left as it was, as a backup
// that no command reads any more.
func MigrateToPostgres(ctx context.Context, dir, url string) (store.Counts, error) {
	s, err := loadSettings(dir)
	if err != nil {
		return store.Counts{}, fmt.Errorf("migrate: %w", err)
	}
	if s.Store != "" {
		return store.Counts{}, fmt.Errorf("migrate: the inventory of %s is already in PostgreSQL (%s)", dir, store.Redact(s.Store))
	}
	if url == "" {
		return store.Counts{}, errors.New("migrate: no PostgreSQL URL")
	}
	if err := checkStoreURL(url); err != nil {
		return store.Counts{}, fmt.Errorf("migrate: %w", err)
	}
	src, err := store.OpenSQLite(ctx, filepath.Join(dir, InventoryFile))
	if err != nil {
		return store.Counts{}, fmt.Errorf("migrate: %w", err)
	}
	defer src.Close()
	dst, err := store.OpenPostgres(ctx, url)
	if err != nil {
		return store.Counts{}, fmt.Errorf("migrate: %w", err)
	}
	defer dst.Close()
	return store.MoveToPostgres(ctx, src, dst, func() error {
		s.Store = url
		b, err := s.marshal()
		if err != nil {
			return err
		}
		return WriteFiles(File{Path: filepath.Join(dir, SettingsFile), Data: b, Perm: 0o644})
	})
}
