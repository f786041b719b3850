package pki

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/gatehouse/gatehouse/internal/pki/store"
)

// checkStoreURL accepts "" (SQLite) or a postgres:// URL without a
// password: ca.json records the URL, so the password belongs in
// ~/.pgpass, PGPASSFILE or a passfile= parameter.
func checkStoreURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return fmt.Errorf("--store %q: want a PostgreSQL URL like postgres://gatehouse@db.example.com:5432/gatehouse_ca", store.Redact(s))
	}
	if _, ok := u.User.Password(); ok || u.Query().Has("password") {
		return fmt.Errorf("--store: the URL holds a password, and ca.json would record it: put it in ~/.pgpass or a file named by PGPASSFILE (or ?passfile=)")
	}
	return nil
}

// initStore prepares a new CA's inventory: the SQLite file is made private
// like the keys (it names every certificate); a PostgreSQL inventory must
// be empty, so that two CAs never share one.
func initStore(st store.Store, dir string, s Settings) error {
	if s.Store == "" {
		return os.Chmod(filepath.Join(dir, InventoryFile), 0o600)
	}
	g, err := st.Generation(context.Background())
	if err != nil {
		return err
	}
	if g != 0 {
		return fmt.Errorf("the PostgreSQL inventory %s is not empty; give each CA its own database (to move an existing CA's inventory, use 'gatehouse ca migrate')", store.Redact(s.Store))
	}
	return nil
}
