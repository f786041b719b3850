package store

import (
	"context"
	"errors"
	"log/slog"
	"math/big"
	"time"

	"github.com/gatehouse/gatehouse/internal/serial"
)

// Errors returned by every Store implementation; test with errors.Is.
var (
	// ErrNotFound means no certificate with that serial was issued here.
	ErrNotFound = errors.New("certificate not found")
	// ErrDuplicateSerial means a certificate with that serial is already
	// recorded; the caller should issue again with a fresh serial.
	ErrDuplicateSerial = errors.New("serial number already used")
	// ErrAlreadyRevoked means the certificate was revoked before; the
	// record returned alongside holds the original time and reason.
	ErrAlreadyRevoked = errors.New("certificate already revoked")
)

// Status is a certificate's revocation status in the inventory.
type Status string

// The statuses a Record can have.
const (
	StatusValid   Status = "valid"
	StatusRevoked Status = "revoked"
)

// Record is one issued certificate.
type Record struct {
	// Serial is the serial number in lower-case hex without leading zeros
	// (see FormatSerial).
	Serial  string
	Subject string
	// SANs lists the subject alternative names as "dns:x", "ip:x", "uri:x"
	// and "email:x".
	SANs      []string
	Profile   string
	NotBefore time.Time
	NotAfter  time.Time
	Status    Status
	// RevokedAt and Reason are set when Status is StatusRevoked; Reason is
	// the RFC 5280 CRLReason code.
	RevokedAt time.Time
	Reason    int
	// IssuedAt is when the certificate was recorded.
	IssuedAt time.Time
	// DER is the certificate itself.
	DER []byte
}

// Filter selects records in List. The zero Filter selects everything.
type Filter struct {
	// Revoked selects only revoked certificates.
	Revoked bool
	// NotAfterBefore, if not zero, selects certificates that expire before
	// it: the valid ones, or with Revoked the revoked ones.
	NotAfterBefore time.Time
}

// CRL is a signed certificate revocation list kept in the inventory.
type CRL struct {
	Number     int64
	ThisUpdate time.Time
	NextUpdate time.Time
	DER        []byte
}

// SignCRLFunc signs a CRL listing revoked with the given number. It is
// called inside the store's write transaction, so that numbers increase
// in the order CRLs are stored even across processes.
type SignCRLFunc func(revoked []Record, number int64) (CRL, error)

// Store is the inventory of issued certificates. Implementations are safe
// for concurrent use by several goroutines and several processes.
type Store interface {
	// Insert records a newly issued certificate with status valid. It
	// returns ErrDuplicateSerial if the serial is already used.
	Insert(ctx context.Context, r Record) error
	// Get returns the record for serial, or ErrNotFound.
	Get(ctx context.Context, serial string) (Record, error)
	// List returns the records selected by f, ordered by expiry.
	List(ctx context.Context, f Filter) ([]Record, error)
	// Revoke marks serial revoked at the given time with an RFC 5280
	// reason code. It returns ErrNotFound for an unknown serial and
	// ErrAlreadyRevoked (with the existing record) when already revoked.
	Revoke(ctx context.Context, serial string, at time.Time, reason int) (Record, error)
	// Generation returns a counter that increases whenever a certificate
	// is inserted or revoked, or a CRL is stored, by any process.
	Generation(ctx context.Context) (int64, error)
	// SignCRL atomically allocates the next CRL number, calls sign with
	// all revoked records, and stores the result as the latest CRL.
	SignCRL(ctx context.Context, sign SignCRLFunc) (CRL, error)
	// LatestCRL returns the CRL with the highest number, or ErrNotFound.
	LatestCRL(ctx context.Context) (CRL, error)
	// Close releases the store.
	Close() error
}

// FormatSerial formats a serial number as Records hold it.
func FormatSerial(n *big.Int) string { return n.Text(16) }

// ParseSerial parses a serial in hex, as openssl prints it or as Records
// hold it: serial.Parse, for callers that hold Records.
func ParseSerial(s string) (*big.Int, error) { return serial.Parse(s) }

// Watcher is implemented by stores that announce changes made by any
// process (PostgreSQL's LISTEN/NOTIFY): a value arrives on the channel
// after each committed change, so servers need not wait for their next
// poll. The channel closes when ctx is done.
type Watcher interface {
	Watch(ctx context.Context, log *slog.Logger) <-chan struct{}
}
