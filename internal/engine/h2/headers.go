package h2

import (
	"net/http"
	"net/textproto"
	"strconv"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// relayHeaders sets the response headers in h: the backend's that are
// relayed (pipeline.RelayResponseHeader), gatehouse's HSTS, Content-Length
// when cl >= 0, and an empty Content-Type when the backend sent none (Go's
// server would sniff one). It allocates twice in all: one string holding
// every name and value, and one backing array for the value slices. The
// strings must outlive the backend response, which is released before Go's
// HTTP/2 server encodes them.
func relayHeaders(h http.Header, rh *fasthttp.ResponseHeader, hsts string, cl int) {
	var local [24][2][]byte
	kept := local[:0]
	size := 0
	for k, v := range rh.All() {
		if pipeline.RelayResponseHeader(b2s(k)) {
			kept = append(kept, [2][]byte{k, v})
			size += len(k) + len(v)
		}
	}
	buf := make([]byte, 0, size+20)
	for _, kv := range kept {
		buf = append(buf, kv[0]...)
		buf = append(buf, kv[1]...)
	}
	clAt := len(buf)
	if cl >= 0 {
		buf = strconv.AppendInt(buf, int64(cl), 10)
	}
	// buf is never written again: strings may share it.
	all := unsafe.String(unsafe.SliceData(buf), len(buf))
	vals := make([]string, len(kept)+2)
	off := 0
	for i, kv := range kept {
		name := all[off : off+len(kv[0])]
		off += len(kv[0])
		if !isCanonical(name) {
			name = textproto.CanonicalMIMEHeaderKey(name)
		}
		vals[i] = all[off : off+len(kv[1])]
		off += len(kv[1])
		if prev, ok := h[name]; ok {
			h[name] = append(prev, vals[i])
		} else {
			h[name] = vals[i : i+1 : i+1]
		}
	}
	n := len(kept)
	vals[n] = hsts
	h["Strict-Transport-Security"] = vals[n : n+1 : n+1]
	if cl >= 0 {
		vals[n+1] = all[clAt:]
		h["Content-Length"] = vals[n+1 : n+2 : n+2]
	}
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil
	}
}

// isCanonical reports whether name is already in canonical MIME header
// form (an upper-case letter first and after each hyphen, lower case
// elsewhere), as fasthttp normalizes response header names; anything
// else, including names CanonicalMIMEHeaderKey leaves alone, goes through
// it.
func isCanonical(name string) bool {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-':
			upper = true
			continue
		case 'a' <= c && c <= 'z':
			if upper {
				return false
			}
		case 'A' <= c && c <= 'Z':
			if !upper {
				return false
			}
		case '0' <= c && c <= '9':
		default:
			return false
		}
		upper = false
	}
	return true
}

// b2s views b as a string for a lookup that does not keep it.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
