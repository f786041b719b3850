package secretfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
)

// ErrContent marks a file that was read but does not hold a usable secret
// (empty, or more than one line): the user's input is wrong, not the
// system.
var ErrContent = errors.New("bad secret file")

// Read returns the secret in the file at path: the whole content with one
// trailing newline ("\n" or "\r\n") removed, as `printf '%s\n' "$secret"
// > file` and an editor write it. What is left must be one line and not
// empty: a file with a second line (or a blank line at its end) is refused
// rather than guessed at, since openssl's "first line" and "the whole file"
// readings would disagree on it and one of them would be the wrong secret.
// what names the secret in errors ("CA passphrase", "PIN"); no error
// carries the secret itself.
func Read(path, what string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s file: %w", what, err)
	}
	s, ok := bytes.CutSuffix(b, []byte("\n"))
	if ok {
		s = bytes.TrimSuffix(s, []byte("\r"))
	}
	switch {
	case len(s) == 0:
		clear(b)
		return nil, contentError(fmt.Sprintf("read %s file %s: it is empty (write the %s on its only line)", what, path, what))
	case bytes.ContainsAny(s, "\r\n"):
		clear(b)
		return nil, contentError(fmt.Sprintf("read %s file %s: it has more than one line (the whole file is the %s, "+
			"with at most one newline at its end: remove the other lines)", what, path, what))
	}
	return s, nil
}

// contentError is an error that errors.Is reports as ErrContent, with its
// own message.
type contentError string

func (e contentError) Error() string        { return string(e) }
func (e contentError) Is(target error) bool { return target == ErrContent }
