package store

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testpg"
)

// MoveToPostgres carries everything over to a real PostgreSQL: above all
// the spent enrollment tokens, so that a token used before the move is
// still refused after it, and the enrollment records; the counts say so.
func TestMoveToPostgres(t *testing.T) {
	ctx := context.Background()
	src := openTemp(t, filepath.Join(t.TempDir(), "inv.db"))
	now := time.Now().Truncate(time.Second)
	for _, r := range []Record{rec("0A", now.Add(time.Hour)), rec("0B", now.Add(2*time.Hour))} {
		if err := src.Insert(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	exp := now.Add(time.Hour)
	for _, id := range []string{"spent-1", "spent-2"} {
		if err := src.UseToken(ctx, id, exp); err != nil {
			t.Fatal(err)
		}
	}
	want := []Enrollment{{"0A", "token", "token:spent-1", "127.0.0.1:5", now.UTC()}, {"0B", "renew", "serial:0A", "127.0.0.1:6", now.UTC()}}
	for _, e := range want {
		if err := src.RecordEnrollment(ctx, e); err != nil {
			t.Fatal(err)
		}
	}

	url := testpg.NewDB(t)
	dst, err := OpenPostgres(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	counts, err := MoveToPostgres(ctx, src, dst, func() error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if counts.Certificates != 2 || counts.UsedTokens != 2 || counts.Enrollments != 2 {
		t.Fatalf("moved %+v; want 2 certificates, 2 spent tokens, 2 enrollments", counts)
	}
	if s := counts.String(); !strings.Contains(s, "2 spent enrollment tokens, 2 enrollment records") {
		t.Errorf("counts read %q", s)
	}
	for _, id := range []string{"spent-1", "spent-2"} {
		if err := dst.UseToken(ctx, id, exp); !errors.Is(err, ErrTokenUsed) {
			t.Errorf("token %s spent before the move: UseToken after it = %v; want ErrTokenUsed", id, err)
		}
	}
	if err := dst.UseToken(ctx, "fresh", exp); err != nil {
		t.Errorf("a fresh token after the move: %v", err)
	}
	got, err := dst.Enrollments(ctx, "")
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("enrollments after the move %+v, %v; want %+v", got, err, want)
	}

	// A second move into the now non-empty database is refused.
	if _, err := MoveToPostgres(ctx, src, dst, func() error { return nil }); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("second move: %v", err)
	}
}

// An inventory that never served the enrollment API (no enrollment tables
// in SQLite yet) moves too.
func TestMoveToPostgresWithoutEnrollments(t *testing.T) {
	ctx := context.Background()
	src := openTemp(t, filepath.Join(t.TempDir(), "inv.db"))
	if err := src.Insert(ctx, rec("0C", time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	dst, err := OpenPostgres(ctx, testpg.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	counts, err := MoveToPostgres(ctx, src, dst, func() error { return nil })
	if err != nil || counts.Certificates != 1 || counts.UsedTokens != 0 {
		t.Fatalf("move %+v, %v", counts, err)
	}
}
