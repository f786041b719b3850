package h2

import (
	"net/http"
	"net/textproto"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/gatehouse/gatehouse/internal/pipeline"
)

// relayHeaders copies the backend response headers that are relayed
// (pipeline.RelayResponseHeader) into h, with two allocations in all: one
// string holding every name and value, and one backing array for the
// value slices. The strings must outlive the backend response, which is
// released before Go's HTTP/2 server encodes them.
func relayHeaders(h http.Header, rh *fasthttp.ResponseHeader) {
	var local [24][2][]byte
	kept := local[:0]
	size := 0
	for k, v := range rh.All() {
		if pipeline.RelayResponseHeader(b2s(k)) {
			kept = append(kept, [2][]byte{k, v})
			size += len(k) + len(v)
		}
	}
	if len(kept) == 0 {
		return
	}
	buf := make([]byte, 0, size)
	for _, kv := range kept {
		buf = append(buf, kv[0]...)
		buf = append(buf, kv[1]...)
	}
	// buf is never written again: strings may share it.
	all := unsafe.String(unsafe.SliceData(buf), len(buf))
	vals := make([]string, len(kept))
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
