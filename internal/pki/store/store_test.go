package store

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testpg"
)

func openTemp(t *testing.T, path string) *SQLite {
	t.Helper()
	s, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func rec(serial string, notAfter time.Time) Record {
	return Record{Serial: serial, Subject: "CN=" + serial, SANs: []string{"dns:" + serial + ".example"},
		Profile: "client", NotBefore: notAfter.Add(-time.Hour), NotAfter: notAfter, IssuedAt: notAfter.Add(-time.Hour), DER: []byte{1}}
}

func TestMain(m *testing.M) {
	code := m.Run()
	testpg.Stop()
	os.Exit(code)
}

// eachBackend runs f against a fresh SQLite file and a fresh PostgreSQL
// database; open returns a new handle on that inventory.
func eachBackend(t *testing.T, f func(t *testing.T, open func() Store)) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "inv.db")
		f(t, func() Store { return openTemp(t, path) })
	})
	t.Run("postgres", func(t *testing.T) {
		url := testpg.NewDB(t)
		f(t, func() Store {
			s, err := OpenPostgres(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
}

func TestLifecycle(t *testing.T) { eachBackend(t, testLifecycle) }

func testLifecycle(t *testing.T, open func() Store) {
	ctx := context.Background()
	s := open()
	now := time.Now().UTC().Truncate(time.Second)
	for i, sn := range []string{"a1", "b2", "c3"} {
		if err := s.Insert(ctx, rec(sn, now.Add(time.Duration(i+1)*24*time.Hour))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Insert(ctx, rec("a1", now)); !errors.Is(err, ErrDuplicateSerial) {
		t.Errorf("duplicate insert: %v", err)
	}
	if _, err := s.Get(ctx, "ff"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get unknown: %v", err)
	}
	g0, _ := s.Generation(ctx)
	r, err := s.Revoke(ctx, "b2", now, 1)
	if err != nil || r.Status != StatusRevoked || r.Reason != 1 || !r.RevokedAt.Equal(now) {
		t.Fatalf("revoke: %+v %v", r, err)
	}
	if g1, _ := s.Generation(ctx); g1 != g0+1 {
		t.Errorf("generation %d -> %d", g0, g1)
	}
	if r, err := s.Revoke(ctx, "b2", now.Add(time.Hour), 4); !errors.Is(err, ErrAlreadyRevoked) || r.Reason != 1 {
		t.Errorf("second revoke: %+v %v", r, err)
	}
	if _, err := s.Revoke(ctx, "dd", now, 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoke unknown: %v", err)
	}
	got, err := s.List(ctx, Filter{Revoked: true})
	if err != nil || len(got) != 1 || got[0].Serial != "b2" {
		t.Errorf("list revoked: %+v %v", got, err)
	}
	got, err = s.List(ctx, Filter{NotAfterBefore: now.Add(36 * time.Hour)})
	if err != nil || len(got) != 1 || got[0].Serial != "a1" || got[0].SANs[0] != "dns:a1.example" {
		t.Errorf("list expiring: %+v %v", got, err)
	}
	if all, _ := s.List(ctx, Filter{}); len(all) != 3 {
		t.Errorf("list all: %d", len(all))
	}
	for want := int64(1); want <= 3; want++ {
		crl, err := s.SignCRL(ctx, func(revoked []Record, n int64) (CRL, error) {
			if len(revoked) != 1 || n != want {
				return CRL{}, fmt.Errorf("revoked %d number %d", len(revoked), n)
			}
			return CRL{ThisUpdate: now, NextUpdate: now.Add(time.Hour), DER: []byte{byte(n)}}, nil
		})
		if err != nil || crl.Number != want {
			t.Fatalf("SignCRL: %+v %v", crl, err)
		}
	}
	if latest, err := s.LatestCRL(ctx); err != nil || latest.Number != 3 || latest.DER[0] != 3 {
		t.Errorf("latest: %+v %v", latest, err)
	}
	// A failing signer rolls the number back.
	if _, err := s.SignCRL(ctx, func([]Record, int64) (CRL, error) { return CRL{}, errors.New("boom") }); err == nil {
		t.Error("failing signer did not fail")
	}
	crl, _ := s.SignCRL(ctx, func(_ []Record, n int64) (CRL, error) { return CRL{DER: []byte{0}}, nil })
	if crl.Number != 4 {
		t.Errorf("number after failed sign: %d", crl.Number)
	}
}

// TestConcurrentHandles inserts from goroutines that each open their own
// handle, as concurrent `ca issue` processes do: no error, no lost or
// duplicated row, and CRL numbers strictly increase without a gap.
func TestConcurrentHandles(t *testing.T) { eachBackend(t, testConcurrentHandles) }

func testConcurrentHandles(t *testing.T, open func() Store) {
	ctx := context.Background()
	open() // create the schema once, as ca init does
	const workers, each = 6, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers*each*2)
	numbers := make(chan int64, workers*each)
	handles := make([]Store, workers)
	for w := range handles {
		handles[w] = open()
	}
	for w := range workers {
		wg.Go(func() {
			s := handles[w]
			for i := range each {
				sn := new(big.Int).SetInt64(int64(w*1000 + i + 1))
				if err := s.Insert(ctx, rec(FormatSerial(sn), time.Now().Add(time.Hour))); err != nil {
					errs <- err
				}
				if i%5 == 0 {
					crl, err := s.SignCRL(ctx, func([]Record, int64) (CRL, error) { return CRL{DER: []byte{1}}, nil })
					if err != nil {
						errs <- err
					}
					numbers <- crl.Number
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	close(numbers)
	for err := range errs {
		t.Error(err)
	}
	s := open()
	all, err := s.List(ctx, Filter{})
	if err != nil || len(all) != workers*each {
		t.Fatalf("rows %d, want %d (%v)", len(all), workers*each, err)
	}
	seen := map[int64]bool{}
	for n := range numbers {
		if seen[n] {
			t.Errorf("CRL number %d used twice", n)
		}
		seen[n] = true
	}
	for n := int64(1); n <= int64(len(seen)); n++ {
		if !seen[n] {
			t.Errorf("CRL number %d missing: numbers have a gap", n)
		}
	}
	if g, _ := s.Generation(ctx); g != int64(workers*each+len(seen)) {
		t.Errorf("generation %d, want %d", g, workers*each+len(seen))
	}
}

func TestParseSerial(t *testing.T) {
	for in, want := range map[string]string{"3F:2A:01": "3f2a01", "0x00ff": "ff", " AbC ": "abc"} {
		n, err := ParseSerial(in)
		if err != nil || FormatSerial(n) != want {
			t.Errorf("ParseSerial(%q) = %v, %v; want %s", in, n, err, want)
		}
	}
	for _, in := range []string{"", "0", "xyz", "-1", "0x"} {
		if _, err := ParseSerial(in); err == nil {
			t.Errorf("ParseSerial(%q) succeeded", in)
		}
	}
}
