package enroll

import (
	"errors"
	"fmt"
)

// apiError is the one error type at the API boundary: the status and the
// short public message the client sees, and the cause the log gets.
type apiError struct {
	status int
	public string
	cause  error
}

func (e *apiError) Error() string {
	if e.cause == nil {
		return e.public
	}
	return e.public + ": " + e.cause.Error()
}

func (e *apiError) Unwrap() error { return e.cause }

func fail(status int, public string, cause error) *apiError {
	return &apiError{status: status, public: public, cause: cause}
}

func failf(status int, public string, format string, args ...any) *apiError {
	return &apiError{status: status, public: public, cause: fmt.Errorf(format, args...)}
}

// asAPIError turns any error into an apiError, a 500 unless it is one.
func asAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	return fail(500, "internal error", err)
}
