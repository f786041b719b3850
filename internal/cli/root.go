package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes shared by all commands.
const (
	ExitOK    = 0
	ExitError = 1 // the operation failed
	ExitUsage = 2 // the command line or the configuration is wrong
)

// exitError carries an exit code through cobra's error return.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError marks err as a problem with what the user asked for (exit 2).
func usageError(err error) error { return &exitError{code: ExitUsage, err: err} }

// Env is what a command may touch of its process: streams, environment and
// a context cancelled on SIGINT/SIGTERM. Tests build their own.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Ctx is cancelled when the command should stop (Ctrl-C). If nil,
	// context.Background is used.
	Ctx context.Context
}

func (e *Env) ctx() context.Context {
	if e.Ctx == nil {
		return context.Background()
	}
	return e.Ctx
}

// Main runs gatehouse with args (without the program name) in the real
// process environment and returns the exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(&Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Ctx: ctx}, args)
}

// Run runs gatehouse with args in env and returns the exit code. Errors are
// printed on env.Stderr as one line, "gatehouse: <error>".
func Run(env *Env, args []string) int {
	code, err := Execute(env, args)
	if err != nil {
		fmt.Fprintf(env.Stderr, "gatehouse: %v\n", err)
	}
	return code
}

// Execute runs gatehouse with args in env and returns (exit code, error)
// without printing the error.
func Execute(env *Env, args []string) (int, error) {
	root := newRootCmd(env)
	root.SetArgs(args)
	err := root.ExecuteContext(env.ctx())
	if err == nil {
		return ExitOK, nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code, ee.err
	}
	// Errors from cobra itself are about the command line.
	return ExitUsage, err
}

func newRootCmd(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "gatehouse",
		Short: "gatehouse is a secure API access proxy: mutual TLS in front of HTTP APIs, with its own CA",
		Long: `gatehouse stands in front of HTTP APIs and lets in only holders of your
certificates. It terminates TLS, verifies client certificates, authorizes
each request by the certificate's identity and forwards that identity to the
backend. 'gatehouse ca' runs the certificate authority that makes it practical.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.AddCommand(
		newServeCmd(env),
		newConfigCmd(env),
		newDemoCmd(env),
		newCACmd(env),
		newScanCmd(env),
		newCertCmd(env),
	)
	addNewUserCmds(root, env)
	return root
}
