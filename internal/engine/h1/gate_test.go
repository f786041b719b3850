package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// gateCorpus is the framing the gate must refuse (status) or pass (0).
// Each refused vector is a known smuggling or desync form.
var gateCorpus = []struct {
	name   string
	raw    string
	status int
}{
	{"plain GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
	{"POST with length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", 0},
	{"chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 0},
	{"chunked with extension and trailer", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n5;a=b;c=\"d e\"\r\nhello\r\n0\r\nX-T: 1\r\n\r\n", 0},
	{"pipelined", "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n", 0},
	{"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", 0},
	{"blank line first", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
	{"OWS around value", "GET / HTTP/1.1\r\nHost:  a \t\r\nX:\r\n\r\n", 0},

	{"CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX", 400},
	{"TE and CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nX", 400},
	{"TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 400},
	{"TE gzip, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400},
	{"TE chunked, chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400},
	{"TE twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	{"TE xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 400},
	{"TE vertical tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n", 400},
	{"TE on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	{"TE space before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400},
	{"CL twice equal", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400},
	{"CL twice different", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", 400},
	{"CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx", 400},
	{"CL plus sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx", 400},
	{"CL negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
	{"CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello", 400},
	{"CL overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
	{"CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400},
	{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n", 400},
	{"obs-fold tab", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: x\r\n\tchunked\r\n\r\n", 400},
	{"first line folded", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400},
	{"bare LF in field", "GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n", 400},
	{"bare LF request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
	{"bare LF head end", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400},
	{"bare CR", "GET / HTTP/1.1\r\nHost: a\rX: 1\r\n\r\n", 400},
	{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
	{"tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400},
	{"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", 400},
	{"NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400},
	{"NUL in name", "GET / HTTP/1.1\r\nHost: a\r\nX\x00Y: 1\r\n\r\n", 400},
	{"DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", 400},
	{"name with slash", "GET / HTTP/1.1\r\nHost: a\r\nX/Y: 1\r\n\r\n", 400},
	{"two spaces after method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"two spaces before version", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"trailing space after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400},
	{"tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 400},
	{"HTTP/2.0 line", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 400},
	{"HTTP/0.9", "GET /\r\n\r\n", 400},
	{"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400},
	{"control in target", "GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
	{"chunk size with space", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", 400},
	{"chunk size space before ext", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 ;a\r\nhello\r\n0\r\n\r\n", 400},
	{"chunk size 0x", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 400},
	{"chunk size negative", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400},
	{"chunk size overflow", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff1\r\nhello\r\n0\r\n\r\n", 400},
	{"chunk size bare LF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400},
	{"chunk ext bare LF", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nhello\r\n0\r\n\r\n", 400},
	{"chunk ext empty name", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n", 400},
	{"chunk ext empty value", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\r\nhello\r\n0\r\n\r\n", 400},
	{"chunk ext with NUL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\"\x00\"\r\nhello\r\n0\r\n\r\n", 400},
	{"chunk data too long", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", 400},
	{"chunk data LF only", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", 400},
	{"CL in trailer", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n", 400},
	{"bad second request", "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nX : 1\r\n\r\n", 400},
	{"smuggled via CL body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost : a\r\n\r\n", 400},
	{"three blank lines", "\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
	{"head too large", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 5000) + "\r\n\r\n", 431},
}

func TestGateCorpus(t *testing.T) {
	for _, tc := range gateCorpus {
		t.Run(tc.name, func(t *testing.T) {
			// Whole, and one byte at a time: the verdict cannot depend on
			// how the bytes arrive.
			for _, step := range []int{len(tc.raw), 1, 7} {
				g := &gate{maxHead: 4096}
				var err *FramingError
				passed := 0
				for i := 0; i < len(tc.raw) && err == nil; i += step {
					end := min(i+step, len(tc.raw))
					var n int
					n, err = g.feed([]byte(tc.raw[i:end]))
					passed += n
				}
				switch {
				case tc.status == 0 && err != nil:
					t.Fatalf("step %d: refused: %v", step, err)
				case tc.status != 0 && err == nil:
					t.Fatalf("step %d: passed, want %d", step, tc.status)
				case err != nil && err.Status != tc.status:
					t.Fatalf("step %d: status %d (%v), want %d", step, err.Status, err, tc.status)
				case tc.status == 0 && passed != len(tc.raw):
					t.Fatalf("step %d: passed %d of %d bytes", step, passed, len(tc.raw))
				}
			}
		})
	}
}

// After the head of an Upgrade request the gate passes bytes untouched.
func TestGateOpaqueAfterUpgrade(t *testing.T) {
	g := &gate{maxHead: 4096}
	raw := "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello\x00\x00 : \n"
	if n, err := g.feed([]byte(raw)); err != nil || n != len(raw) || !g.sawUpReq {
		t.Fatalf("fed %d of %d, %v, upgrade seen %v", n, len(raw), err, g.sawUpReq)
	}
}

// FuzzGate checks that the gate's verdict does not depend on how the
// bytes are split, and that every complete request it passes is one Go's
// strict HTTP/1.1 parser also reads, with the same body.
func FuzzGate(f *testing.F) {
	for _, tc := range gateCorpus {
		f.Add([]byte(tc.raw), uint8(3))
	}
	f.Fuzz(func(t *testing.T, raw []byte, split uint8) {
		whole := &gate{maxHead: 4096}
		n1, err1 := whole.feed(raw)
		parts := &gate{maxHead: 4096}
		step := int(split)%17 + 1
		n2 := 0
		var err2 *FramingError
		for i := 0; i < len(raw) && err2 == nil; i += step {
			n, err := parts.feed(raw[i:min(i+step, len(raw))])
			n2 += n
			err2 = err
		}
		if (err1 == nil) != (err2 == nil) || n1 != n2 {
			t.Fatalf("whole: %d %v; split by %d: %d %v", n1, err1, step, n2, err2)
		}
		if err1 != nil || whole.opaque {
			return
		}
		// Every complete message the gate passed must parse the same way
		// in net/http (which refuses what the gate refuses and more).
		br := bufio.NewReader(bytes.NewReader(raw[:n1]))
		for {
			if _, err := br.Peek(1); err != nil {
				return
			}
			req, err := http.ReadRequest(br)
			if err != nil {
				if whole.st != sLineStart || strings.Contains(err.Error(), "EOF") {
					return // an incomplete last message
				}
				if strings.Contains(err.Error(), "malformed HTTP request") || strings.Contains(err.Error(), "missing required Host") ||
					strings.Contains(err.Error(), "invalid method") || strings.Contains(err.Error(), "invalid URI") ||
					strings.Contains(err.Error(), "invalid Host") || strings.Contains(err.Error(), "too many Host") ||
					strings.HasPrefix(err.Error(), "parse ") {
					return // not framing: the pipeline answers 400 for these
				}
				t.Fatalf("gate passed what net/http refuses: %v\n%q", err, raw[:n1])
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				if whole.st != sLineStart {
					return
				}
				t.Fatalf("body the gate passed: %v\n%q", err, raw[:n1])
			}
		}
	})
}

// BenchmarkGate measures the gate on a typical API request head (what it
// adds to every HTTP/1.1 request before fasthttp parses it).
func BenchmarkGate(b *testing.B) {
	head := []byte("GET /v1/orders/12345?expand=items HTTP/1.1\r\nHost: api.example.com\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n" +
		"Accept: application/json\r\nAccept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\n" +
		"Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc\r\n" +
		"Cookie: session=0123456789abcdef0123456789abcdef\r\nConnection: keep-alive\r\n\r\n")
	g := &gate{maxHead: 64 << 10}
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.feed(head); err != nil {
			b.Fatal(err)
		}
	}
}
