package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEnrollmentStore(t *testing.T) { eachBackend(t, testEnrollmentStore) }

func testEnrollmentStore(t *testing.T, open func() Store) {
	ctx := context.Background()
	s := open().(EnrollmentStore)
	exp := time.Now().Add(time.Hour)
	if err := s.UseToken(ctx, "t1", exp); err != nil {
		t.Fatal(err)
	}
	// Used once, also through another handle (a restart, a replica).
	other := open().(EnrollmentStore)
	if err := other.UseToken(ctx, "t1", exp); !errors.Is(err, ErrTokenUsed) {
		t.Fatalf("second use: %v", err)
	}
	// Racing handles: one wins.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := open().(EnrollmentStore).UseToken(ctx, "t2", exp); err == nil {
				wins.Add(1)
			} else if !errors.Is(err, ErrTokenUsed) {
				t.Errorf("race: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d handles spent token t2", wins.Load())
	}
	at := time.Now().UTC().Truncate(time.Second)
	for _, e := range []Enrollment{{"a1", "token", "token:t1", "127.0.0.1:5", at}, {"b2", "renew", "serial:a1", "127.0.0.1:6", at}} {
		if err := s.RecordEnrollment(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	all, err := other.Enrollments(ctx, "")
	if err != nil || len(all) != 2 {
		t.Fatalf("enrollments %v %v", all, err)
	}
	one, err := other.Enrollments(ctx, "b2")
	if err != nil || len(one) != 1 || one[0] != (Enrollment{"b2", "renew", "serial:a1", "127.0.0.1:6", at}) {
		t.Fatalf("enrollments of b2 %+v %v", one, err)
	}
}
