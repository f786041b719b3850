package pki

import (
	"context"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// An intermediate CA's root signs a CRL at init; ca serve publishes it at
// /crl/root beside the issuing CA's at /crl; signing it again raises its
// number and keeps its entries.
func TestRootCRL(t *testing.T) {
	ca := newCA(t, InitOptions{Intermediate: true, URL: "http://127.0.0.1:8089/"})
	ctx := context.Background()
	first, err := ca.RootCRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ca, ServerOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	get := func(path string) *x509.RevocationList {
		t.Helper()
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pkix-crl" {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		rl, err := x509.ParseRevocationList(b)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return rl
	}
	root := get("/crl/root")
	if err := root.CheckSignatureFrom(ca.Root()); err != nil || root.Number.Int64() != first.Number {
		t.Errorf("/crl/root: number %v, signature %v", root.Number, err)
	}
	if err := get("/crl").CheckSignatureFrom(ca.Issuer()); err != nil {
		t.Errorf("/crl not signed by the intermediate: %v", err)
	}
	if got := ca.Issuer().CRLDistributionPoints; len(got) != 1 || got[0] != "http://127.0.0.1:8089/crl/root" {
		t.Errorf("intermediate CDP = %v", got)
	}
	if _, err := ca.UpdateRootCRL(ctx, []byte("wrong")); err == nil {
		t.Error("root CRL signed with a wrong passphrase")
	}
	second, err := ca.UpdateRootCRL(ctx, testPass)
	if err != nil {
		t.Fatal(err)
	}
	if second.Number != first.Number+1 {
		t.Errorf("new root CRL number %d after %d", second.Number, first.Number)
	}
	if rl := get("/crl/root"); rl.Number.Int64() != second.Number {
		t.Errorf("ca serve still serves root CRL %v", rl.Number)
	}

	// Without an intermediate the root is the issuer: /crl/root is /crl.
	flat := newCA(t, InitOptions{})
	fsrv, _ := NewServer(flat, ServerOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	rec := httptest.NewRecorder()
	fsrv.ServeHTTP(rec, httptest.NewRequest("GET", "/crl/root", nil))
	if rl, err := x509.ParseRevocationList(rec.Body.Bytes()); err != nil || rl.CheckSignatureFrom(flat.Root()) != nil {
		t.Errorf("flat CA /crl/root: %d %v", rec.Code, err)
	}
}
