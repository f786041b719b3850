package pki

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// File is one file for WriteFiles.
type File struct {
	Path string
	Data []byte
	// Perm is the file's mode; 0 means 0600.
	Perm os.FileMode
}

// WriteFiles writes files all or nothing: each goes to a temporary file in
// its directory first (created 0600, so a key is never readable by others
// even briefly), is synced, and only when all are written are they renamed
// into place. On error no temporary file is left and no target was touched
// (a failing rename, which does not happen on one file system in practice,
// may leave the earlier ones renamed).
func WriteFiles(files ...File) (err error) {
	temps := make([]string, 0, len(files))
	defer func() {
		if err != nil {
			for _, t := range temps {
				os.Remove(t)
			}
		}
	}()
	for _, f := range files {
		t, err := writeTemp(f)
		if err != nil {
			return err
		}
		temps = append(temps, t)
	}
	for i, f := range files {
		if err := os.Rename(temps[i], f.Path); err != nil {
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
	}
	temps = nil
	return nil
}

func writeTemp(f File) (string, error) {
	perm := f.Perm
	if perm == 0 {
		perm = 0o600
	}
	dir, base := filepath.Split(f.Path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", f.Path, err)
	}
	_, werr := tmp.Write(f.Data)
	if werr == nil {
		werr = tmp.Chmod(perm)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("write %s: %w", f.Path, err)
	}
	return tmp.Name(), nil
}
