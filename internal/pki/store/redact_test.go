package store

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://gatehouse@db.example.com/ca":                  "postgres://gatehouse@db.example.com/ca",
		"postgres://gatehouse:s3cret@db.example.com/ca":           "postgres://gatehouse:xxxxx@db.example.com/ca",
		"postgres://gatehouse@db.example.com/ca?password=s3cret":  "postgres://gatehouse@db.example.com/ca?password=xxxxx",
		"postgresq://db.example.com/ca?password=s3cret&sslmode=x": "postgresq://db.example.com/ca?password=xxxxx&sslmode=x",
		"host=db user=gatehouse password=s3cret":                  "(PostgreSQL DSN)",
		"postgres://%zz":                                          "(PostgreSQL DSN)",
	} {
		got := Redact(in)
		if got != want || strings.Contains(got, "s3cret") {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
