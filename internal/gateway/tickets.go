package gateway

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"sync/atomic"
	"time"
)

// ticketTag marks gatehouse's entry in tls.SessionState.Extra.
const ticketTag = "gatehouse-binding-v1:"

// issuedTag marks the entry that holds when the session's full handshake
// took place (Unix seconds, big-endian).
const issuedTag = "gatehouse-issued-v1:"

// MaxSessionAge bounds resumption: a session whose full handshake is older
// is not resumed, however many tickets it went through (crypto/tls alone
// accepts TLS 1.3 tickets for 7 days and renews them on every resumption).
// The ticket keys themselves are generated and rotated daily by crypto/tls.
const MaxSessionAge = 24 * time.Hour

// ticketBinding ties a session ticket to the SNI name and the client
// certificate policy it was minted under (DESIGN.md invariant 3).
func ticketBinding(policy [32]byte, serverName string) []byte {
	h := sha256.New()
	h.Write(policy[:])
	h.Write([]byte(normalizeSNI(serverName)))
	return h.Sum([]byte(ticketTag))
}

func issuedEntry(t time.Time) []byte {
	return binary.BigEndian.AppendUint64([]byte(issuedTag), uint64(t.Unix()))
}

func issuedAt(extra [][]byte) (time.Time, bool) {
	for _, e := range extra {
		if len(e) == len(issuedTag)+8 && bytes.HasPrefix(e, []byte(issuedTag)) {
			return time.Unix(int64(binary.BigEndian.Uint64(e[len(issuedTag):])), 0), true
		}
	}
	return time.Time{}, false
}

// sessionTickets returns the WrapSession and UnwrapSession of one
// connection. They share the time of the full handshake of the session
// being resumed, so that a ticket minted on a resumed connection carries
// the original time, not a fresh one.
func (s *Server) sessionTickets(snap *snapshot) (func(tls.ConnectionState, *tls.SessionState) ([]byte, error), func([]byte, tls.ConnectionState) (*tls.SessionState, error)) {
	var resumedIssued atomic.Int64 // Unix seconds; 0 until a ticket is accepted
	wrap := func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		issued := s.now()
		if v := resumedIssued.Load(); cs.DidResume && v != 0 {
			issued = time.Unix(v, 0)
		}
		ss.Extra = append(ss.Extra, ticketBinding(snap.policyID, cs.ServerName), issuedEntry(issued))
		return s.listenerTLS.EncryptTicket(cs, ss)
	}
	// A ticket that was not minted for this SNI name under the policy in
	// force now, or whose session is older than MaxSessionAge, is not an
	// error: the client simply gets a full handshake.
	unwrap := func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := s.listenerTLS.DecryptTicket(identity, cs)
		if err != nil || ss == nil {
			return nil, err
		}
		issued, ok := issuedAt(ss.Extra)
		if !ok || s.now().Sub(issued) > MaxSessionAge {
			return nil, nil
		}
		want := ticketBinding(snap.policyID, cs.ServerName)
		for _, e := range ss.Extra {
			if bytes.Equal(e, want) {
				resumedIssued.Store(issued.Unix())
				return ss, nil
			}
		}
		return nil, nil
	}
	return wrap, unwrap
}
