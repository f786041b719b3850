package config

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/gatehouse/gatehouse/internal/authz"
)

// validateAllow checks every field of every allow rule on its own, so that
// each bad pin or pattern of a list is reported at its own line (authz
// compiles a list and stops at its first problem). Issuer files are read by
// provisioning, not here.
func validateAllow(ps *problems, field string, rules []authz.Rule) {
	for i, r := range rules {
		f := field + "[" + strconv.Itoa(i) + "]"
		if r == (authz.Rule{}) {
			compileOne(ps, f, r)
			continue
		}
		for _, one := range []authz.Rule{
			{SPIFFEID: r.SPIFFEID}, {SANURI: r.SANURI}, {SANDNS: r.SANDNS}, {SANEmail: r.SANEmail},
			{SANIP: r.SANIP}, {FingerprintSHA256: r.FingerprintSHA256}, {SPKISHA256: r.SPKISHA256},
			{Subject: authz.Subject{CN: r.Subject.CN}}, {Subject: authz.Subject{O: r.Subject.O}},
			{Subject: authz.Subject{OU: r.Subject.OU}}, {Subject: authz.Subject{C: r.Subject.C}},
		} {
			if one != (authz.Rule{}) {
				compileOne(ps, f, one)
			}
		}
	}
}

// compileOne compiles a one-field rule and reports its problem under the
// rule's field path, in authz's words without its own coordinates.
func compileOne(ps *problems, f string, r authz.Rule) {
	_, err := authz.Compile([]authz.Rule{r}, nil)
	var re *authz.RuleError
	switch {
	case err == nil:
	case errors.As(err, &re):
		msg := re.Problem
		if re.Field != "" {
			f += "." + re.Field
			msg = strconv.Quote(re.Value) + ": " + msg
		}
		if re.Hint != "" {
			msg += " (" + re.Hint + ")"
		}
		*ps = append(*ps, Problem{Field: f, Err: errors.New(msg)})
	default:
		*ps = append(*ps, Problem{Field: f, Err: fmt.Errorf("%w", err)})
	}
}
