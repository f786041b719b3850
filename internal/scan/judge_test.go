package scan

import (
	"errors"
	"testing"
)

// A check whose connection could not even be made is no evidence that the
// server refuses the client: it must not pass.
func TestJudgeRefusalNeedsAConnection(t *testing.T) {
	err := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	if st, how := judgeRefusal(&handshake{err: err, dialErr: err}); st != Inconclusive {
		t.Errorf("judgeRefusal without a connection = %s (%s), want %s", st, how, Inconclusive)
	}
	if st, _ := judgeRefusal(&handshake{err: errors.New("remote error: tls: bad certificate"), alert: "bad certificate"}); st != Pass {
		t.Errorf("judgeRefusal of a refused handshake = %s, want %s", st, Pass)
	}
}
