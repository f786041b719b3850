package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/pki"
	"github.com/gatehouse/gatehouse/internal/pki/enroll"
)

// enrollFlags are the flags of 'ca serve' for the enrollment API.
type enrollFlags struct {
	listen, grace string
	names         []string
	revoke        bool
}

func (f *enrollFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "tls-listen", "", "also serve the enrollment API and EST over HTTPS on this address")
	fl.StringArrayVar(&f.names, "tls-name", nil, "DNS name or IP of the HTTPS listener, for its certificate (repeatable; default localhost, 127.0.0.1 and the listen host)")
	fl.StringVar(&f.grace, "renew-grace", "", "let certificates that expired at most this long ago renew (default none, at most 7d)")
	fl.BoolVar(&f.revoke, "revoke-superseded", false, "revoke a certificate (reason superseded) once its renewal is issued")
}

// startEnrollment starts the HTTPS enrollment listener when --tls-listen
// is set. The returned wait blocks until it stopped (after ctx is done).
func startEnrollment(ctx context.Context, env *Env, ca *pki.CA, f *enrollFlags, log *slog.Logger) (wait func() error, err error) {
	if f.listen == "" {
		if f.grace != "" || f.revoke || len(f.names) > 0 {
			return nil, usageError(errors.New("--renew-grace, --revoke-superseded and --tls-name need --tls-listen"))
		}
		return func() error { return nil }, nil
	}
	grace, err := parseDurationFlag("renew-grace", f.grace)
	if err != nil {
		return nil, err
	}
	if grace < 0 || grace > enroll.MaxGrace {
		return nil, usageError(fmt.Errorf("--renew-grace %s: must be at most 7d", f.grace))
	}
	names := f.names
	if len(names) == 0 {
		names = []string{"localhost", "127.0.0.1"}
		if h, _, err := net.SplitHostPort(f.listen); err == nil && h != "" && h != "localhost" && h != "127.0.0.1" &&
			h != "0.0.0.0" && h != "::" {
			names = append(names, strings.Trim(h, "[]"))
		}
	}
	audit := slog.New(slog.NewJSONHandler(env.Stdout, nil))
	// Listen first: a busy port should not cost a listener certificate.
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return nil, fmt.Errorf("ca serve: %w", err)
	}
	srv, err := enroll.New(ca, enroll.Options{Grace: grace, RevokeSuperseded: f.revoke, Names: names, Log: log, Audit: audit})
	if err != nil {
		ln.Close()
		return nil, err
	}
	fmt.Fprintf(env.Stdout, "gatehouse ca serve: enrollment API and EST at https://%s (names %s)\n", ln.Addr(), strings.Join(names, ", "))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	return func() error { return <-done }, nil
}
