package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

func newServeCmd(env *Env) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve [--config FILE]",
		Short: "Run the gateway",
		Long: `Run the gateway with the configuration in FILE until SIGINT or SIGTERM,
then stop accepting connections and drain in-flight requests.

The configuration and every file it names (certificates, keys, CAs, CRL
files) are reloaded when they change and on SIGHUP: the new state is built
completely, then swapped in; an invalid one is refused with its reason in
the log while the old one keeps serving. Without --config: $GATEHOUSE_CONFIG,
else /etc/gatehouse/gatehouse.yaml.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := configPath(env, path, nil)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), env, p, nil)
		},
	}
	addConfigFlag(cmd, &path)
	return cmd
}

// serve loads the configuration at path and runs the gateway until ctx is
// done. If ready is not nil it receives the gateway's address once it
// listens.
func serve(ctx context.Context, env *Env, path string, ready func(addr net.Addr)) error {
	f, err := config.Load(path)
	if err != nil {
		return usageError(err)
	}
	c := &f.Config
	level, err := telemetry.ParseLevel(c.Log.Level)
	if err != nil {
		return usageError(err)
	}
	logger, err := telemetry.NewLogger(env.Stderr, c.Log.Format, level)
	if err != nil {
		return usageError(err)
	}
	dest := c.Log.Audit
	if dest != "stdout" && dest != "stderr" && dest != "off" {
		dest = f.Resolve(dest)
	}
	audit, err := telemetry.OpenAudit(dest, env.Stdout, env.Stderr)
	if err != nil {
		return err
	}
	audit.OnError(func(err error) { logger.Error(err.Error()) })
	defer audit.Close()
	stopReopen := reopenOnSIGUSR1(audit, logger)
	defer stopReopen()
	gw, err := gateway.New(f, gateway.Options{Log: logger, Audit: audit})
	if err != nil {
		return usageError(err)
	}
	for _, w := range secretFileWarnings(f) {
		logger.Warn("config: " + w)
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if c.Admin.Listen != "" {
		stop, err := serveAdmin(f, gw, logger)
		if err != nil {
			ln.Close()
			return err
		}
		defer stop()
	}
	rctx, stopReload := context.WithCancel(ctx)
	defer stopReload()
	rl := newReloader(path, f, gw, logger)
	rl.start(rctx)
	if err := startRenewers(rctx, f, rl, logger); err != nil {
		ln.Close()
		return usageError(err)
	}
	startExpiryAlerts(rctx, f, gw, logger)
	logger.Info("gatehouse listening", "addr", ln.Addr().String(), "routes", len(c.Routes), "client_auth", c.ClientAuth.Mode)
	if ready != nil {
		ready(ln.Addr())
	}
	return gw.Serve(ctx, ln)
}

func newConfigCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Work with configuration files",
	}
	var path string
	check := &cobra.Command{
		Use:   "check [FILE | --config FILE]",
		Short: "Validate a configuration file and every file it names",
		Long: `Validate FILE: strict YAML, safe values, and every certificate, key and
CA it names loads. Every problem of the file is reported in one run. Exit 0
when valid; otherwise print each problem as FILE:LINE: FIELD: PROBLEM and
exit 1. Without FILE or --config: $GATEHOUSE_CONFIG, else
/etc/gatehouse/gatehouse.yaml.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := configPath(env, path, args)
			if err != nil {
				return err
			}
			return checkConfig(env.Stdout, env.Stderr, p)
		},
	}
	addConfigFlag(check, &path)
	cmd.AddCommand(check)
	return cmd
}

// reopenOnSIGUSR1 flushes and reopens the audit log on SIGUSR1, the
// signal logrotate's postrotate sends after renaming the file.
func reopenOnSIGUSR1(audit *telemetry.Audit, logger *slog.Logger) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
				if err := audit.Reopen(); err != nil {
					logger.Error("SIGUSR1: " + err.Error())
				} else {
					logger.Info("SIGUSR1: audit log reopened")
				}
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(ch); close(done) }
}
