// Package validate checks requests against an OpenAPI 3 document (method
// and path against its operations, parameters, JSON bodies against their
// schemas) and against limits that need no document, answering refusals
// as RFC 9457 problem details that name the field but never echo its value.
package validate
