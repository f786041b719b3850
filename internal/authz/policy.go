package authz

import (
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/identity"
)

// Policy is a compiled list of allow rules for one route. It is immutable
// and safe for concurrent use. A nil *Policy behaves like an empty one.
type Policy struct {
	rules []compiledRule
}

// Decision is the outcome of evaluating a Policy for one request.
type Decision struct {
	// Allowed reports whether the client may use the route.
	Allowed bool
	// Rule is the index of the allow rule that matched, or -1 when none did:
	// the request was denied, or the policy has no rules.
	Rule int
	// Reason says why the request was denied, for logs only (clients get a
	// generic error). Empty when Allowed.
	Reason string
}

// compiledRule is a Rule reduced to the checks for the fields it sets.
type compiledRule struct {
	checks []check
}

// check is one field of a rule. match returns "" when the identity matches,
// otherwise a short constant that says why not, for the denial log.
type check struct {
	field string
	match func(*identity.Identity) string
}

func (r *compiledRule) add(field string, match func(*identity.Identity) string) {
	r.checks = append(r.checks, check{field: field, match: match})
}

// Reasons a single check did not match; constants, so a check never allocates.
const (
	whyNoMatch = "no match"
	whyNUL     = "certificate value contains NUL"
)

// maxReasons bounds how many rules a denial reason lists, to keep log lines short.
const maxReasons = 4

// Len returns the number of allow rules.
func (p *Policy) Len() int {
	if p == nil {
		return 0
	}
	return len(p.rules)
}

// Evaluate decides whether id may use the route. A policy without rules
// allows any non-nil identity; a nil identity (no verified client
// certificate) is always denied. The first matching rule wins.
//
// Evaluate runs on every request: all parsing happened in Compile, the allow
// path does not allocate except for san_uri checks (which format the
// certificate's URIs), and the deny path allocates only the reason string.
func (p *Policy) Evaluate(id *identity.Identity) Decision {
	if id == nil || id.Leaf == nil {
		return Decision{Rule: -1, Reason: "no verified client certificate"}
	}
	if p.Len() == 0 {
		return Decision{Allowed: true, Rule: -1}
	}
	// Remember why the first few rules failed, on the stack, so the common
	// allow path builds no strings.
	type miss struct {
		rule       int
		field, why string
	}
	var misses [maxReasons]miss
	for i := range p.rules {
		field, why := p.rules[i].eval(id)
		if why == "" {
			return Decision{Allowed: true, Rule: i}
		}
		if i < maxReasons {
			misses[i] = miss{rule: i, field: field, why: why}
		}
	}
	var b strings.Builder
	b.WriteString("no allow rule matched: ")
	n := min(len(p.rules), maxReasons)
	for i, m := range misses[:n] {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString("allow[")
		b.WriteString(strconv.Itoa(m.rule))
		b.WriteString("] ")
		b.WriteString(m.field)
		b.WriteString(": ")
		b.WriteString(m.why)
	}
	if more := len(p.rules) - n; more > 0 {
		b.WriteString("; and ")
		b.WriteString(strconv.Itoa(more))
		b.WriteString(" more")
	}
	return Decision{Rule: -1, Reason: b.String()}
}

// eval returns ("", "") when every check of the rule matches, otherwise the
// first failing field and why it failed.
func (r *compiledRule) eval(id *identity.Identity) (field, why string) {
	for _, c := range r.checks {
		if why := c.match(id); why != "" {
			return c.field, why
		}
	}
	return "", ""
}
