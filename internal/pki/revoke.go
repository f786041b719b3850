package pki

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"

	"github.com/gatehouse/gatehouse/internal/pki/store"
)

// Reason is an RFC 5280 CRLReason code.
type Reason int

// The revocation reasons gatehouse accepts (RFC 5280 section 5.3.1).
// certificateHold and removeFromCRL are left out: gatehouse revocation is
// permanent.
const (
	ReasonUnspecified          Reason = 0
	ReasonKeyCompromise        Reason = 1
	ReasonCACompromise         Reason = 2
	ReasonAffiliationChanged   Reason = 3
	ReasonSuperseded           Reason = 4
	ReasonCessationOfOperation Reason = 5
	ReasonPrivilegeWithdrawn   Reason = 9
)

var reasonNames = map[Reason]string{
	ReasonUnspecified:          "unspecified",
	ReasonKeyCompromise:        "keyCompromise",
	ReasonCACompromise:         "cACompromise",
	ReasonAffiliationChanged:   "affiliationChanged",
	ReasonSuperseded:           "superseded",
	ReasonCessationOfOperation: "cessationOfOperation",
	ReasonPrivilegeWithdrawn:   "privilegeWithdrawn",
}

// String is the RFC 5280 name of r.
func (r Reason) String() string {
	if n, ok := reasonNames[r]; ok {
		return n
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// ReasonNames lists the accepted reason names.
func ReasonNames() []string {
	var out []string
	for _, n := range reasonNames {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ParseReason returns the reason named s (case-insensitive); "" is
// unspecified.
func ParseReason(s string) (Reason, error) {
	if s == "" {
		return ReasonUnspecified, nil
	}
	for r, n := range reasonNames {
		if strings.EqualFold(n, s) {
			return r, nil
		}
	}
	return 0, fmt.Errorf("unknown revocation reason %q (use one of %s)", s, strings.Join(ReasonNames(), ", "))
}

// Errors from Revoke; test with errors.Is.
var (
	ErrUnknownSerial  = store.ErrNotFound
	ErrAlreadyRevoked = store.ErrAlreadyRevoked
)

// Revoke marks the certificate with this serial revoked and publishes a
// new CRL. Revoking an unknown serial fails with ErrUnknownSerial;
// revoking twice fails with ErrAlreadyRevoked and returns the record of the
// first revocation.
func (ca *CA) Revoke(ctx context.Context, serial *big.Int, reason Reason) (store.Record, error) {
	if _, ok := reasonNames[reason]; !ok {
		return store.Record{}, fmt.Errorf("revoke: unsupported reason code %d", int(reason))
	}
	if _, err := ca.signer(); err != nil {
		return store.Record{}, fmt.Errorf("revoke: %w", err)
	}
	rec, err := ca.store.Revoke(ctx, store.FormatSerial(serial), ca.now(), int(reason))
	if errors.Is(err, store.ErrAlreadyRevoked) {
		return rec, err
	}
	if err != nil {
		return store.Record{}, err
	}
	if _, err := ca.UpdateCRL(ctx); err != nil {
		return rec, fmt.Errorf("revoked %s, but %w (run 'gatehouse ca crl' to retry)", rec.Serial, err)
	}
	return rec, nil
}
