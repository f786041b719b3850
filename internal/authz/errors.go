package authz

import (
	"fmt"
	"strconv"
)

// RuleError reports an invalid allow rule. Its message reads
//
//	allow[2].spiffe_id: "spiffe://x/**/y": "**" is only allowed as the last path segment (use "*" to match exactly one segment)
//
// so that the config loader can prefix it with the file and line of the
// YAML node that Index and Field name.
type RuleError struct {
	// Index is the rule's position in the slice given to Compile.
	Index int
	// Field is the rule's YAML key ("spiffe_id", "subject.cn"). Empty when the
	// problem is the rule as a whole.
	Field string
	// Value is the offending value as written. Empty when Field is empty.
	Value string
	// Problem says what is wrong.
	Problem string
	// Hint says what to write instead. Empty when there is nothing to add.
	Hint string
	// Err is the underlying cause, such as the error from loading an issuer
	// file. Nil for a purely syntactic problem.
	Err error
}

// Error implements error.
func (e *RuleError) Error() string {
	msg := "allow[" + strconv.Itoa(e.Index) + "]"
	if e.Field != "" {
		msg += "." + e.Field + ": " + strconv.Quote(e.Value)
	}
	msg += ": " + e.Problem
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// Unwrap returns the underlying cause, if any.
func (e *RuleError) Unwrap() error { return e.Err }

// invalid is what a value parser returns: the problem and what to use
// instead. Compile turns it into a RuleError with the rule's coordinates.
type invalid struct {
	problem, hint string
}

func bad(problem, hint string) *invalid { return &invalid{problem: problem, hint: hint} }

func badf(hint, format string, args ...any) *invalid {
	return &invalid{problem: fmt.Sprintf(format, args...), hint: hint}
}

// Error implements error, so a loader-side check can travel as one.
func (iv *invalid) Error() string { return iv.problem }
