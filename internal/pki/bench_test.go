package pki

import (
	"context"
	"testing"

	"golang.org/x/crypto/ocsp"
)

// BenchmarkIssue measures a whole `ca issue` minus the process: P-256 key
// generation, signing, verification against the chain and the inventory
// insert (one SQLite transaction with a synced WAL write).
func BenchmarkIssue(b *testing.B) {
	ca := newCA(b, InitOptions{})
	for b.Loop() {
		if _, err := ca.Issue(IssueRequest{Profile: ProfileClient, CN: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOCSPCached measures an OCSP answer for a status already cached
// (request parsing, issuer check, cache lookup), against
// BenchmarkOCSPSigned, the same request with a nonce, which is signed
// fresh each time: the cost the cache saves.
func BenchmarkOCSPCached(b *testing.B) {
	r, req := benchResponder(b)
	if _, err := r.Respond(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := r.Respond(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOCSPSigned(b *testing.B) {
	r, req := benchResponder(b)
	req = withNonce(b, req)
	for b.Loop() {
		if _, err := r.Respond(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

func benchResponder(b *testing.B) (*Responder, []byte) {
	ca := newCA(b, InitOptions{})
	iss, err := ca.Issue(IssueRequest{Profile: ProfileClient, CN: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	r, err := NewResponder(ca)
	if err != nil {
		b.Fatal(err)
	}
	req, err := ocsp.CreateRequest(iss.Cert(), ca.Issuer(), nil)
	if err != nil {
		b.Fatal(err)
	}
	return r, req
}
