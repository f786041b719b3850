package gateway

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
)

// ticketTag marks gatehouse's entry in tls.SessionState.Extra.
const ticketTag = "gatehouse-binding-v1:"

// ticketBinding ties a session ticket to the SNI name and the client
// certificate policy it was minted under (DESIGN.md invariant 3).
func ticketBinding(policy [32]byte, serverName string) []byte {
	h := sha256.New()
	h.Write(policy[:])
	h.Write([]byte(normalizeSNI(serverName)))
	return h.Sum([]byte(ticketTag))
}

// wrapSession adds the binding and encrypts the ticket with the
// listener's keys.
func (s *Server) wrapSession(snap *snapshot) func(tls.ConnectionState, *tls.SessionState) ([]byte, error) {
	return func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		ss.Extra = append(ss.Extra, ticketBinding(snap.policyID, cs.ServerName))
		return s.listenerTLS.EncryptTicket(cs, ss)
	}
}

// unwrapSession decrypts a ticket and accepts it only if it was minted
// for this SNI name under the policy in force now. A ticket that does not
// match is not an error: the client simply gets a full handshake.
func (s *Server) unwrapSession(snap *snapshot) func([]byte, tls.ConnectionState) (*tls.SessionState, error) {
	return func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := s.listenerTLS.DecryptTicket(identity, cs)
		if err != nil || ss == nil {
			return nil, err
		}
		want := ticketBinding(snap.policyID, cs.ServerName)
		for _, e := range ss.Extra {
			if bytes.Equal(e, want) {
				return ss, nil
			}
		}
		return nil, nil
	}
}
