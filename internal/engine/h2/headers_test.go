package h2

import (
	"bufio"
	"net/http"
	"net/textproto"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

func backendHeader(t testing.TB, raw string) *fasthttp.ResponseHeader {
	t.Helper()
	var rh fasthttp.ResponseHeader
	if err := rh.Read(bufioReader(raw)); err != nil {
		t.Fatal(err)
	}
	return &rh
}

const sampleResponse = "HTTP/1.1 200 OK\r\nDate: Tue, 01 Dec 2026 10:00:00 GMT\r\nContent-Type: text/plain\r\n" +
	"Content-Length: 1024\r\nConnection: keep-alive\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n" +
	"x-lower-case: v\r\nX_Under: u\r\nStrict-Transport-Security: max-age=1\r\nETag: \"abc\"\r\n\r\n"

// naive is the obvious conversion relayHeaders must agree with.
func naive(rh *fasthttp.ResponseHeader, hsts string, cl int) http.Header {
	h := http.Header{}
	for k, v := range rh.All() {
		if pipeline.RelayResponseHeader(string(k)) {
			name := textproto.CanonicalMIMEHeaderKey(string(k))
			h[name] = append(h[name], string(v))
		}
	}
	h.Set("Strict-Transport-Security", hsts)
	if cl >= 0 {
		h.Set("Content-Length", strconv.Itoa(cl))
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil
	}
	return h
}

func TestRelayHeaders(t *testing.T) {
	rh := backendHeader(t, sampleResponse)
	want := naive(rh, "max-age=2", 1024)
	got := http.Header{}
	relayHeaders(got, rh, "max-age=2", 1024)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("relayHeaders:\n got %q\nwant %q", got, want)
	}
	if _, ok := got["Connection"]; ok || got.Get("Strict-Transport-Security") != "max-age=2" {
		t.Errorf("backend's hop-by-hop or HSTS relayed: %q", got)
	}
	// Without a Content-Length and a Content-Type.
	rh2 := backendHeader(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
	got2 := http.Header{}
	relayHeaders(got2, rh2, "max-age=2", -1)
	if want2 := naive(rh2, "max-age=2", -1); !reflect.DeepEqual(got2, want2) {
		t.Fatalf("relayHeaders, chunked:\n got %q\nwant %q", got2, want2)
	}
	// The strings do not alias the backend response's buffers.
	rh.Reset()
	rh.Set("Content-Type", "XXXXXXXXXX")
	if got.Get("Content-Type") != "text/plain" || got.Get("Etag") != `"abc"` {
		t.Fatalf("relayed headers changed with the backend response: %q", got)
	}
}

func TestIsCanonical(t *testing.T) {
	for _, s := range []string{"Content-Type", "X-1a", "Etag", "A", "Www-Authenticate", "x-lower", "X_Under", "ETag", "Content-type", "-X", "A--B", "X Y", ""} {
		if got, want := isCanonical(s), textproto.CanonicalMIMEHeaderKey(s) == s; got && !want {
			t.Errorf("isCanonical(%q) = true, but CanonicalMIMEHeaderKey gives %q", s, textproto.CanonicalMIMEHeaderKey(s))
		}
	}
}

func BenchmarkRelayHeaders(b *testing.B) {
	rh := backendHeader(b, sampleResponse)
	b.Run("relayHeaders", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			relayHeaders(make(http.Header, 8), rh, "max-age=2", 1024)
		}
	})
	b.Run("naive", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			naive(rh, "max-age=2", 1024)
		}
	})
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
