package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/authz"
	"github.com/gatehouse/gatehouse/internal/certsource"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
)

// DefaultConfigPath is where serve and config check look for the
// configuration when neither --config, a FILE argument nor
// $GATEHOUSE_CONFIG names one.
const DefaultConfigPath = "/etc/gatehouse/gatehouse.yaml"

// addConfigFlag adds --config/-c to cmd.
func addConfigFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVarP(path, "config", "c", "", "configuration file (YAML); default $GATEHOUSE_CONFIG, else "+DefaultConfigPath)
}

// configPath chooses the configuration file: --config, else a positional
// FILE, else $GATEHOUSE_CONFIG, else DefaultConfigPath.
func configPath(env *Env, flag string, args []string) (string, error) {
	switch {
	case flag != "" && len(args) > 0 && args[0] != flag:
		return "", usageError(fmt.Errorf("two configuration files given (--config %s and %s): give one", flag, args[0]))
	case flag != "":
		return flag, nil
	case len(args) > 0:
		return args[0], nil
	}
	if env.Getenv != nil {
		if p := env.Getenv("GATEHOUSE_CONFIG"); p != "" {
			return p, nil
		}
	}
	if _, err := os.Stat(DefaultConfigPath); errors.Is(err, fs.ErrNotExist) {
		return "", usageError(fmt.Errorf("no configuration: %s does not exist (give a file with -c FILE, or set $GATEHOUSE_CONFIG)", DefaultConfigPath))
	}
	return DefaultConfigPath, nil
}

// checkConfig reports every problem of the file at path in one run: YAML,
// semantics and the files it names (provisioning runs even when the
// values have problems, and its findings are merged in without repeating
// a field already reported).
func checkConfig(stdout, stderr io.Writer, path string) error {
	f, errs := config.LoadAll(path)
	if f != nil {
		// Each named file on its own first, at its own line; then the
		// gateway's provisioning, for what only loading them together
		// shows (a key that does not match its certificate).
		errs = append(errs, namedFileProblems(f, errs)...)
		errs = append(errs, fileProblems(f, errs)...)
		errs.Sort()
	}
	if len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(stderr, e)
		}
		noun := "problems"
		if len(errs) == 1 {
			noun = "problem"
		}
		return &exitError{code: ExitError, err: fmt.Errorf("%s: %d %s", path, len(errs), noun)}
	}
	for _, w := range append(checkWarnings(f), shortLivedWarnings(f)...) {
		fmt.Fprintln(stderr, "warning: "+w)
	}
	fmt.Fprintf(stdout, "%s: OK (%d routes, %d certificates, client_auth %s)\n",
		path, len(f.Config.Routes), len(f.Config.ServerTLS.Certificates), f.Config.ClientAuth.Mode)
	return nil
}

var routeField = regexp.MustCompile(`^routes\[\d+\]$`)

// fileProblems provisions f (loading every file it names) and returns the
// problems not already covered by known.
func fileProblems(f *config.File, known config.Errors) (out config.Errors) {
	if len(known) > 0 {
		// Provisioning a configuration with refused values is best
		// effort: what it cannot build is already reported.
		defer func() {
			if recover() != nil {
				out = nil
			}
		}()
	}
	err := gateway.Check(f)
	if err == nil {
		return nil
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		return config.Errors{{File: f.Path, Err: err}}
	}
	for _, e := range errs {
		if !coveredBy(known, e) {
			out = append(out, e)
		}
	}
	return out
}

// coveredBy reports whether a provisioning problem repeats a known one. A
// route's problems are matched by what they are about (an allow rule, the
// backend, upstream_tls) rather than by the whole route, so a missing
// issuer file is still reported beside a bad method of the same route.
func coveredBy(known config.Errors, e *config.FieldError) bool {
	if !routeField.MatchString(e.Field) {
		return config.Related(known, e.Field)
	}
	var re *authz.RuleError
	if errors.As(e.Err, &re) {
		field := fmt.Sprintf("%s.allow[%d]", e.Field, re.Index)
		if re.Field != "" {
			field += "." + re.Field
		}
		return config.Related(known, field)
	}
	return config.Related(known, e.Field+".backend") || config.Related(known, e.Field+".upstream_tls")
}

// namedFileProblems checks every file the configuration names, each at
// its own field and line: that it can be read, and for CA files (trusted
// CAs, issuers of allow rules) that it holds CA certificates. Provisioning
// stops at the first file of a list that fails, and does not reach
// revocation or later routes once something failed; this reports them all.
func namedFileProblems(f *config.File, known config.Errors) (out config.Errors) {
	c := &f.Config
	add := func(field string, err error) {
		if err != nil && !config.Related(known, field) {
			out = append(out, &config.FieldError{File: f.Path, Line: f.Line(field), Field: field, Err: err})
		}
	}
	readable := func(field, p string) bool {
		if p == "" {
			return false
		}
		fh, err := os.Open(f.Resolve(p))
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			name := p
			if r := f.Resolve(p); r != p {
				name += " (" + r + ", relative to the configuration file)"
			}
			add(field, fmt.Errorf("read %s: %w", name, err))
			return false
		}
		fh.Close()
		return true
	}
	loadCA := func(field, p, hint string) {
		if !readable(field, p) {
			return
		}
		if _, _, err := certsource.LoadCAs([]string{f.Resolve(p)}); err != nil {
			add(field, fmt.Errorf("%w (%s)", err, hint))
		}
	}
	for i, ck := range c.ServerTLS.Certificates {
		base := fmt.Sprintf("server_tls.certificates[%d]", i)
		readable(base+".cert", ck.Cert)
		readable(base+".key", ck.Key)
		readable(base+".key_passphrase_file", ck.KeyPassphraseFile)
	}
	if c.ClientAuth.Mode != config.ModeNone {
		for i, p := range c.ClientAuth.TrustedCAs {
			loadCA(fmt.Sprintf("client_auth.trusted_cas[%d]", i), p, "give a PEM file of the CA certificates that issue client certificates")
		}
		for i, src := range c.ClientAuth.Revocation.CRL {
			if !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
				readable(fmt.Sprintf("client_auth.revocation.crl[%d]", i), src)
			}
		}
	}
	for i, r := range c.Routes {
		for j, rule := range r.Allow {
			loadCA(fmt.Sprintf("routes[%d].allow[%d].issuer", i, j), rule.Issuer, "give the path of a PEM file holding the issuing CA certificate")
		}
		if u := r.UpstreamTLS; u != nil {
			base := fmt.Sprintf("routes[%d].upstream_tls", i)
			readable(base+".ca", u.CA)
			readable(base+".cert", u.Cert)
			readable(base+".key", u.Key)
		}
	}
	return out
}
