package telemetry

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// AuditRecord is one audit event: a request, a refused handshake or a
// tunnel (a WebSocket after its 101). Every field is written when set;
// the fields of a request record are always written, so a record has the
// same shape whatever its outcome.
type AuditRecord struct {
	Time      time.Time
	Event     string // "request", "handshake_refused", "tunnel", ...
	RequestID string
	Remote    string
	Method    string
	Host      string
	Path      string
	Route     string
	Proto     string
	Status    int
	BytesIn   int64
	BytesOut  int64
	Duration  time.Duration
	// Decision is "allow", "deny" or "error"; Reason says why a request
	// was refused or failed (logs only, never sent to the client).
	Decision string
	Reason   string
	// The client's verified identity, when it presented a certificate.
	Subject     string
	Serial      string // as openssl prints it: upper-case hex
	Issuer      string
	SPIFFE      string
	Fingerprint string
	SANs        []string
	// The rate or concurrency limit that refused the request, and its key.
	Limit    string
	LimitKey string
	// Handshake fields.
	SNI     string
	Resumed bool
}

// Audit writes audit records as JSON lines, one object per record,
// through a buffer: a record costs an encode and a copy, not a write(2).
// The buffer is flushed at least every FlushInterval, on Reopen and on
// Close. A record that cannot be written is counted (Dropped) and the
// first failure after a success is reported through OnError, so nothing
// is lost silently.
//
// An Audit is safe for concurrent use.
type Audit struct {
	mu     sync.Mutex
	bw     *bufio.Writer
	out    io.Writer // the file or stream under bw
	file   *os.File  // nil for the standard streams and Discard
	path   string    // reopened by Reopen; "" for streams
	failed bool      // the last write failed (reported once)
	closed bool
	zl     zerolog.Logger

	dropped atomic.Uint64
	written atomic.Uint64
	onError func(error)

	stop chan struct{}
	done chan struct{}
}

// FlushInterval is the longest a record waits in the buffer.
const FlushInterval = time.Second

// auditBufferSize holds a burst of records between flushes; a record is
// about 400 bytes.
const auditBufferSize = 64 << 10

// OpenAudit opens the audit log for dest: "stdout", "stderr", "off" or a
// file path (appended to, created 0600). Close must be called at shutdown
// to flush what is buffered.
func OpenAudit(dest string, stdout, stderr io.Writer) (*Audit, error) {
	switch dest {
	case "stdout":
		return newAudit(stdout, nil, ""), nil
	case "stderr":
		return newAudit(stderr, nil, ""), nil
	case "off":
		return NewDiscardAudit(), nil
	}
	f, err := openAuditFile(dest)
	if err != nil {
		return nil, err
	}
	return newAudit(f, f, dest), nil
}

// NewAudit returns an Audit writing to w (tests, embedding).
func NewAudit(w io.Writer) *Audit { return newAudit(w, nil, "") }

// NewDiscardAudit returns an Audit that drops every record without
// counting it: what `log.audit: off` asks for.
func NewDiscardAudit() *Audit { return newAudit(nil, nil, "") }

func openAuditFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	return f, nil
}

func newAudit(w io.Writer, f *os.File, path string) *Audit {
	a := &Audit{out: w, file: f, path: path, stop: make(chan struct{}), done: make(chan struct{})}
	if w == nil {
		a.zl = zerolog.Nop()
		close(a.done)
		return a
	}
	a.bw = bufio.NewWriterSize(w, auditBufferSize)
	a.zl = zerolog.New(auditSink{a})
	go a.flushLoop()
	return a
}

// OnError sets the function told when records start to fail to be
// written (once per run of failures). Call it before the first Write.
func (a *Audit) OnError(fn func(error)) { a.onError = fn }

// Dropped is the number of records that could not be written.
func (a *Audit) Dropped() uint64 { return a.dropped.Load() }

// Written is the number of records handed to the buffer.
func (a *Audit) Written() uint64 { return a.written.Load() }

// Write encodes r and buffers it. It does not block on the disk unless
// the buffer is full.
func (a *Audit) Write(r *AuditRecord) {
	e := a.zl.Log()
	if e == nil {
		return // discarding
	}
	var tb [40]byte
	e.Bytes("time", r.Time.UTC().AppendFormat(tb[:0], time.RFC3339Nano))
	level := "info"
	if r.Decision == "deny" || r.Decision == "error" {
		level = "warn"
	}
	e.Str("level", level).Str("event", r.Event)
	if r.Event == "request" || r.Event == "tunnel" {
		e.Str("request_id", r.RequestID).
			Str("remote", r.Remote).
			Str("method", r.Method).
			Str("host", r.Host).
			Str("path", r.Path).
			Str("route", r.Route).
			Str("proto", r.Proto).
			Int("status", r.Status).
			Int64("bytes_in", r.BytesIn).
			Int64("bytes_out", r.BytesOut)
		var db [24]byte
		e.RawJSON("duration_ms", strconv.AppendFloat(db[:0], float64(r.Duration.Microseconds())/1000, 'f', -1, 64))
	} else {
		e.Str("remote", r.Remote).Str("sni", r.SNI).Bool("resumed", r.Resumed)
	}
	if r.Decision != "" {
		e.Str("decision", r.Decision)
	}
	if r.Reason != "" {
		e.Str("reason", r.Reason)
	}
	if r.Subject != "" || r.Serial != "" {
		e.Str("subject", r.Subject).Str("serial", r.Serial).Str("issuer", r.Issuer)
		if r.SPIFFE != "" {
			e.Str("spiffe_id", r.SPIFFE)
		}
		if r.Fingerprint != "" {
			e.Str("fingerprint_sha256", r.Fingerprint)
		}
		if len(r.SANs) > 0 {
			e.Strs("sans", r.SANs)
		}
	}
	if r.Limit != "" {
		e.Str("limit", r.Limit).Str("limit_key", r.LimitKey)
	}
	a.written.Add(1)
	e.Send()
}

// auditSink receives one encoded record per Write from zerolog.
type auditSink struct{ a *Audit }

func (s auditSink) Write(p []byte) (int, error) {
	a := s.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		a.fail(errAuditClosed)
		return len(p), nil
	}
	if _, err := a.bw.Write(p); err != nil {
		a.fail(err)
	}
	return len(p), nil
}

// fail counts the record whose write failed and resets the buffer, whose
// error would otherwise stick. Called with mu held.
func (a *Audit) fail(err error) {
	a.dropped.Add(1)
	a.bw.Reset(a.out)
	if !a.failed {
		a.failed = true
		if a.onError != nil {
			a.onError(fmt.Errorf("audit log: %w (records are being dropped and counted)", err))
		}
	}
}

// Flush writes what is buffered.
func (a *Audit) Flush() error {
	if a.bw == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.flushLocked()
}

func (a *Audit) flushLocked() error {
	n := a.bw.Buffered()
	if n == 0 {
		return nil
	}
	if err := a.bw.Flush(); err != nil {
		// The records in the buffer are lost; count them as one loss per
		// flush, since their number is not known without parsing.
		a.fail(err)
		return err
	}
	a.failed = false
	return nil
}

func (a *Audit) flushLoop() {
	defer close(a.done)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			a.Flush()
		case <-a.stop:
			return
		}
	}
}

// Reopen flushes and reopens the audit file at its path, as logrotate
// expects on SIGUSR1 after it renamed the file. For the standard streams
// it only flushes.
func (a *Audit) Reopen() error {
	if a.bw == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	flushErr := a.flushLocked()
	if a.file == nil {
		return flushErr
	}
	f, err := openAuditFile(a.path)
	if err != nil {
		return fmt.Errorf("reopen audit log (still writing to the old file): %w", err)
	}
	old := a.file
	a.file, a.out = f, f
	a.bw.Reset(f)
	return errors.Join(flushErr, old.Close())
}

// Close flushes the buffer and closes the file. Records written after
// Close are dropped and counted.
func (a *Audit) Close() error {
	if a.bw == nil {
		return nil
	}
	select {
	case <-a.stop:
		return nil // already closed
	default:
		close(a.stop)
	}
	<-a.done
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.flushLocked()
	a.closed = true
	if a.file != nil {
		err = errors.Join(err, a.file.Close())
		a.file = nil
	}
	return err
}

var errAuditClosed = errors.New("audit log closed")
