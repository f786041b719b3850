package h1

// FramingError is a request the gate refused: ambiguous or malformed
// HTTP/1.1 framing. Everything after it on the connection is untrusted, so
// the answer is Status and the connection closes.
type FramingError struct {
	Status int
	Reason string
}

func (e *FramingError) Error() string { return "http/1.1 framing: " + e.Reason }

// gate is a strict HTTP/1.1 framing validator that sits between the
// connection and fasthttp's parser (engines.md e). It sees every byte
// fasthttp reads, follows message boundaries itself (request line, header
// fields, Content-Length or chunked body, trailers, the next pipelined
// request) and lets through only bytes that belong to unambiguous
// messages. What it refuses fasthttp never parses:
//
//   - a request line other than method SP target SP HTTP/1.0|1.1 CRLF
//     (extra spaces, a control byte in the target, another version);
//   - bare LF or bare CR anywhere in the head, obs-fold (a field line
//     starting with SP/HTAB), an empty field name, whitespace before the
//     colon, a byte outside tchar in a name, NUL or another control byte
//     in a value;
//   - Content-Length that is not digits only, or given twice; Content-
//     Length together with Transfer-Encoding; Transfer-Encoding other
//     than one field holding exactly "chunked"; Transfer-Encoding on
//     HTTP/1.0; a second Host;
//   - in chunked bodies: a size that is not 1-15 hex digits, whitespace
//     around it, extensions that are not ;token[=token|quoted-string],
//     data not followed by CRLF, Content-Length/Transfer-Encoding/Host in
//     trailers;
//   - a head longer than the configured maximum (431).
//
// After the head of a request that asks for an Upgrade, the gate passes
// bytes untouched: the engine either tunnels or closes the connection
// after the answer, so no further request is read from it.
//
// The gate keeps a few dozen bytes of state and no buffer: it validates
// fasthttp's read buffer in place.
type gate struct {
	maxHead int
	err     *FramingError
	opaque  bool // after an Upgrade request's head

	st      uint8
	headLen int // bytes of the current head (or trailer section)
	lineLen int
	blank   int // empty lines before a request line

	// Current field.
	name       [24]byte
	nameLen    int
	val        [24]byte
	valLen     int
	valTrail   int // trailing OWS bytes in val
	valStarted bool
	valOver    bool
	capture    bool // the value matters for framing (CL, TE, Host, Upgrade)

	// Current message.
	proto10  bool
	verLen   int
	clCount  int
	teCount  int
	hosts    int
	cl       int64
	chunked  bool
	upgrade  bool
	conn     bool // Connection field seen
	trailer  bool // in the trailer section
	remain   int64
	hexLen   int
	extLen   int
	sawUpReq bool // this connection carried an Upgrade request
}

// States.
const (
	sLineStart = iota
	sLineStartLF
	sMethod
	sTarget
	sVersion
	sReqLF
	sFieldStart
	sName
	sValue
	sFieldLF
	sHeadEndLF
	sBodyCL
	sChunkSize
	sChunkExt
	sChunkExtVal
	sChunkExtQuoted
	sChunkExtQuotedPair
	sChunkExtAfterQuote
	sChunkSizeLF
	sChunkData
	sChunkDataCR
	sChunkDataLF
)

const (
	maxBlankLines = 2
	maxChunkExt   = 256
)

var version = []byte("HTTP/1.")

// tchar (RFC 9110 section 5.6.2).
var isTchar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// isFieldByte: field-vchar, SP, HTAB, obs-text.
var isFieldByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = true
	}
	for c := 0x80; c <= 0xff; c++ {
		t[c] = true
	}
	t['\t'] = true
	return t
}()

func (g *gate) fail(status int, reason string) *FramingError {
	g.err = &FramingError{Status: status, Reason: reason}
	return g.err
}

// feed validates p, the next bytes of the connection. It returns how many
// leading bytes may be given to the parser; on a violation the error is
// set and the bytes from the offending one on are withheld.
func (g *gate) feed(p []byte) (int, *FramingError) {
	if g.err != nil {
		return 0, g.err
	}
	for i := 0; i < len(p); i++ {
		if g.opaque {
			return len(p), nil
		}
		// Fast paths: runs of ordinary bytes in a target or in a value
		// the gate does not need to read are skipped with one table
		// lookup per byte; the state machine sees only the byte that
		// ends the run.
		switch g.st {
		case sTarget:
			j := i
			for j < len(p) && p[j] > 0x20 && p[j] != 0x7f {
				j++
			}
			if j > i {
				if k, err := g.grow(i, j-i); err != nil {
					return k, err
				}
				g.lineLen += j - i
				if i = j; i == len(p) {
					return len(p), nil
				}
			}
		case sName:
			j := i
			for j < len(p) && isTchar[p[j]] {
				j++
			}
			if j > i {
				if k, err := g.grow(i, j-i); err != nil {
					return k, err
				}
				for _, c := range p[i:j] {
					g.addName(c)
				}
				if i = j; i == len(p) {
					return len(p), nil
				}
			}
		case sValue:
			if !g.capture {
				j := i
				for j < len(p) && isFieldByte[p[j]] {
					j++
				}
				if j > i {
					if k, err := g.grow(i, j-i); err != nil {
						return k, err
					}
					if i = j; i == len(p) {
						return len(p), nil
					}
				}
			}
		}
		c := p[i]
		switch g.st {
		case sBodyCL, sChunkData:
			// Body bytes are counted, not looked at.
			n := min(int64(len(p)-i), g.remain)
			g.remain -= n
			i += int(n) - 1
			if g.remain == 0 {
				if g.st == sBodyCL {
					g.endMessage()
				} else {
					g.st = sChunkDataCR
				}
			}
			continue
		}
		if g.inHead() {
			if k, err := g.grow(i, 1); err != nil {
				return k, err
			}
		}
		if err := g.step(c); err != nil {
			return i, err
		}
	}
	return len(p), nil
}

// grow counts n more bytes of the head, the first of them at p[i]. Past
// the limit it fails, and reports as passed the bytes up to the limit, as
// counting one byte at a time would.
func (g *gate) grow(i, n int) (int, *FramingError) {
	if g.headLen+n > g.maxHead {
		pass := i + g.maxHead - g.headLen
		g.headLen = g.maxHead + 1
		return pass, g.fail(431, "request head larger than limits.max_header_bytes")
	}
	g.headLen += n
	return 0, nil
}

// idle reports whether the gate is between messages with nothing of the
// next one seen: the connection may be parked.
func (g *gate) idle() bool {
	return g.err == nil && !g.opaque && g.st == sLineStart && g.blank == 0
}

func (g *gate) inHead() bool {
	return g.st <= sHeadEndLF
}

func (g *gate) step(c byte) *FramingError {
	switch g.st {
	case sLineStart:
		switch {
		case c == '\r':
			// RFC 9112 2.2: an empty line before a request line may be
			// ignored; a few at most.
			g.blank++
			if g.blank > maxBlankLines {
				return g.fail(400, "empty lines before the request line")
			}
			g.st = sLineStartLF
		case isTchar[c]:
			g.st = sMethod
		default:
			return g.fail(400, "request line does not start with a method")
		}
	case sLineStartLF:
		if c != '\n' {
			return g.fail(400, "bare CR before the request line")
		}
		g.headLen = 0
		g.st = sLineStart
	case sMethod:
		switch {
		case isTchar[c]:
		case c == ' ':
			g.st, g.lineLen = sTarget, 0
		default:
			return g.fail(400, "malformed method")
		}
	case sTarget:
		switch {
		case c == ' ':
			if g.lineLen == 0 {
				return g.fail(400, "extra space in the request line")
			}
			g.st, g.verLen = sVersion, 0
		case c < 0x20 || c == 0x7f:
			return g.fail(400, "control byte in the request target")
		default:
			g.lineLen++
		}
	case sVersion:
		switch {
		case g.verLen < len(version):
			if c != version[g.verLen] {
				if c == ' ' {
					return g.fail(400, "extra space in the request line")
				}
				return g.fail(400, "request line does not end in HTTP/1.0 or HTTP/1.1")
			}
			g.verLen++
		case g.verLen == len(version):
			if c != '0' && c != '1' {
				return g.fail(400, "HTTP version other than 1.0 or 1.1")
			}
			g.proto10 = c == '0'
			g.verLen++
		default:
			if c == '\r' {
				g.st = sReqLF
				return nil
			}
			if c == '\n' {
				return g.fail(400, "bare LF ends the request line")
			}
			return g.fail(400, "request line does not end after the version")
		}
	case sReqLF:
		if c != '\n' {
			return g.fail(400, "bare CR in the request line")
		}
		g.st = sFieldStart
	case sFieldStart:
		switch {
		case c == '\r':
			g.st = sHeadEndLF
		case c == ' ' || c == '\t':
			return g.fail(400, "obs-fold or whitespace at the start of a field line")
		case c == ':':
			return g.fail(400, "empty field name")
		case c == '\n':
			return g.fail(400, "bare LF in the head")
		case isTchar[c]:
			g.nameLen, g.valLen, g.valTrail, g.valStarted, g.valOver = 0, 0, 0, false, false
			g.addName(c)
			g.st = sName
		default:
			return g.fail(400, "invalid byte in a field name")
		}
	case sName:
		switch {
		case isTchar[c]:
			g.addName(c)
		case c == ':':
			g.st = sValue
			g.capture = g.isName("content-length") || g.isName("transfer-encoding") ||
				g.isName("host") || g.isName("upgrade")
		case c == ' ' || c == '\t':
			return g.fail(400, "whitespace before the colon")
		default:
			return g.fail(400, "invalid byte in a field name")
		}
	case sValue:
		switch {
		case c == '\r':
			g.st = sFieldLF
		case c == '\n':
			return g.fail(400, "bare LF in a field line")
		case !isFieldByte[c]:
			return g.fail(400, "control byte in a field value")
		case c == ' ' || c == '\t':
			if g.valStarted {
				g.addVal(c)
				g.valTrail++
			}
		default:
			g.valStarted = true
			g.valTrail = 0
			g.addVal(c)
		}
	case sFieldLF:
		if c != '\n' {
			return g.fail(400, "bare CR in a field line")
		}
		if err := g.endField(); err != nil {
			return err
		}
		g.st = sFieldStart
	case sHeadEndLF:
		if c != '\n' {
			return g.fail(400, "bare CR ends the head")
		}
		if g.trailer {
			g.endMessage()
			return nil
		}
		return g.endHead()
	case sChunkSize:
		switch {
		case isHex(c):
			g.hexLen++
			if g.hexLen > 15 {
				return g.fail(400, "chunk size too long")
			}
			g.remain = g.remain<<4 | int64(unhex(c))
		case g.hexLen == 0:
			return g.fail(400, "chunk size is not hex")
		case c == ';':
			g.st, g.extLen, g.lineLen = sChunkExt, 0, 0
		case c == '\r':
			g.st = sChunkSizeLF
		default:
			return g.fail(400, "malformed chunk size line")
		}
	case sChunkExt: // ;name
		if g.bumpExt() {
			return g.fail(400, "chunk extensions too long")
		}
		switch {
		case isTchar[c]:
			g.extLen++
		case g.extLen == 0:
			return g.fail(400, "empty or malformed chunk extension name")
		case c == '=':
			g.st, g.extLen = sChunkExtVal, 0
		case c == ';':
			g.extLen = 0
		case c == '\r':
			g.st = sChunkSizeLF
		default:
			return g.fail(400, "malformed chunk extension")
		}
	case sChunkExtVal: // =value
		if g.bumpExt() {
			return g.fail(400, "chunk extensions too long")
		}
		switch {
		case c == '"' && g.extLen == 0:
			g.st = sChunkExtQuoted
		case isTchar[c]:
			g.extLen++
		case g.extLen == 0:
			return g.fail(400, "empty or malformed chunk extension value")
		case c == ';':
			g.st, g.extLen = sChunkExt, 0
		case c == '\r':
			g.st = sChunkSizeLF
		default:
			return g.fail(400, "malformed chunk extension value")
		}
	case sChunkExtQuoted:
		if g.bumpExt() {
			return g.fail(400, "chunk extensions too long")
		}
		switch {
		case c == '"':
			g.st = sChunkExtAfterQuote
		case c == '\\':
			g.st = sChunkExtQuotedPair
		case c == '\t' || c >= 0x20 && c != 0x7f:
		default:
			return g.fail(400, "control byte in a chunk extension")
		}
	case sChunkExtQuotedPair:
		if c < 0x20 && c != '\t' || c == 0x7f {
			return g.fail(400, "control byte in a chunk extension")
		}
		g.st = sChunkExtQuoted
	case sChunkExtAfterQuote:
		switch c {
		case ';':
			g.st, g.extLen = sChunkExt, 0
		case '\r':
			g.st = sChunkSizeLF
		default:
			return g.fail(400, "malformed chunk extension")
		}
	case sChunkSizeLF:
		if c != '\n' {
			return g.fail(400, "bare CR in a chunk size line")
		}
		if g.remain == 0 {
			// Last chunk: the trailer section follows, under the same
			// rules as the head.
			g.trailer, g.headLen = true, 0
			g.st = sFieldStart
			return nil
		}
		g.st = sChunkData
	case sChunkDataCR:
		if c != '\r' {
			return g.fail(400, "chunk data longer than its size")
		}
		g.st = sChunkDataLF
	case sChunkDataLF:
		if c != '\n' {
			return g.fail(400, "chunk data not followed by CRLF")
		}
		g.st, g.hexLen, g.remain, g.lineLen = sChunkSize, 0, 0, 0
	}
	return nil
}

func (g *gate) bumpExt() bool {
	g.lineLen++
	return g.lineLen > maxChunkExt
}

func (g *gate) addName(c byte) {
	if g.nameLen < len(g.name) {
		g.name[g.nameLen] = lower[c]
	}
	g.nameLen++
}

var lower = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if 'A' <= i && i <= 'Z' {
			t[i] += 'a' - 'A'
		}
	}
	return t
}()

func (g *gate) addVal(c byte) {
	if g.valLen < len(g.val) {
		g.val[g.valLen] = c
	} else {
		g.valOver = true
	}
	g.valLen++
}

func (g *gate) isName(s string) bool {
	return g.nameLen == len(s) && string(g.name[:g.nameLen]) == s
}

// value returns the field value without trailing OWS ("" if it did not
// fit the capture buffer, with over set).
func (g *gate) value() (v []byte, over bool) {
	if g.valOver {
		return nil, true
	}
	return g.val[:g.valLen-g.valTrail], false
}

func (g *gate) endField() *FramingError {
	if g.trailer {
		if g.isName("content-length") || g.isName("transfer-encoding") || g.isName("host") {
			return g.fail(400, "framing field in the trailer section")
		}
		return nil
	}
	switch {
	case g.isName("content-length"):
		g.clCount++
		if g.clCount > 1 {
			return g.fail(400, "Content-Length given twice")
		}
		v, over := g.value()
		if over || len(v) == 0 || len(v) > 18 {
			return g.fail(400, "malformed Content-Length")
		}
		var n int64
		for _, d := range v {
			if d < '0' || d > '9' {
				return g.fail(400, "malformed Content-Length")
			}
			n = n*10 + int64(d-'0')
		}
		g.cl = n
	case g.isName("transfer-encoding"):
		g.teCount++
		if g.teCount > 1 {
			return g.fail(400, "Transfer-Encoding given twice")
		}
		v, over := g.value()
		if over || !asciiFold(v, "chunked") {
			return g.fail(400, "Transfer-Encoding other than chunked")
		}
		g.chunked = true
	case g.isName("host"):
		g.hosts++
		if g.hosts > 1 {
			return g.fail(400, "Host given twice")
		}
	case g.isName("upgrade"):
		g.upgrade = true
	}
	return nil
}

func (g *gate) endHead() *FramingError {
	switch {
	case g.teCount > 0 && g.clCount > 0:
		return g.fail(400, "Content-Length with Transfer-Encoding")
	case g.teCount > 0 && g.proto10:
		return g.fail(400, "Transfer-Encoding on HTTP/1.0")
	}
	if g.upgrade {
		g.opaque, g.sawUpReq = true, true
		return nil
	}
	switch {
	case g.chunked:
		g.st, g.hexLen, g.remain, g.lineLen = sChunkSize, 0, 0, 0
	case g.cl > 0:
		g.st, g.remain = sBodyCL, g.cl
	default:
		g.endMessage()
	}
	return nil
}

// endMessage resets the per-message state for the next request.
func (g *gate) endMessage() {
	sawUp := g.sawUpReq
	*g = gate{maxHead: g.maxHead, sawUpReq: sawUp}
}

func asciiFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
