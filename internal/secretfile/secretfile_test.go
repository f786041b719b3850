package secretfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, content, want, err string
	}{
		{"newline", "s3cret pass\n", "s3cret pass", ""},
		{"crlf", "s3cret pass\r\n", "s3cret pass", ""},
		{"no newline", "s3cret pass", "s3cret pass", ""},
		{"spaces kept", " s3cret \n", " s3cret ", ""},
		{"empty", "", "", "it is empty"},
		{"only newline", "\n", "", "it is empty"},
		{"only crlf", "\r\n", "", "it is empty"},
		{"two lines", "s3cret\nother\n", "", "more than one line"},
		{"blank line after", "s3cret\n\n", "", "more than one line"},
		{"second line unterminated", "s3cret\nother", "", "more than one line"},
		{"bare cr", "s3c\rret\n", "", "more than one line"},
		{"two crlf", "s3cret\r\n\r\n", "", "more than one line"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
			if err := os.WriteFile(p, []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := Read(p, "PIN")
			if c.err == "" {
				if err != nil || string(got) != c.want {
					t.Fatalf("Read = %q, %v; want %q", got, err, c.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Read = %q; want an error with %q", got, c.err)
			}
			if !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), p) || !strings.HasPrefix(err.Error(), "read PIN file ") {
				t.Fatalf("error %q; want it to start with the operation, name %s and say %q", err, p, c.err)
			}
			if strings.Contains(err.Error(), "s3c") {
				t.Fatalf("error %q carries the secret", err)
			}
			if !errors.Is(err, ErrContent) {
				t.Fatalf("error %q is not ErrContent", err)
			}
		})
	}
	_, err := Read(filepath.Join(dir, "missing"), "PIN")
	if !errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrContent) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing file: %v", err)
	}
}
