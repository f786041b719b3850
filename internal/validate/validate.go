package validate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// DefaultMaxJSONDepth bounds JSON nesting when Options.MaxJSONDepth is zero.
const DefaultMaxJSONDepth = 32

// maxSpecSize bounds the document Load reads.
const maxSpecSize = 16 << 20

// Options configure a Validator.
type Options struct {
	// MaxJSONDepth bounds how deeply a JSON body may nest. If zero,
	// DefaultMaxJSONDepth.
	MaxJSONDepth int
}

// Validator checks requests against one compiled OpenAPI 3 document. It is
// immutable and safe for concurrent use.
//
// The document's paths are matched against the request path as the
// backend receives it; its servers are ignored. Security requirements are
// not checked here (mutual TLS and allow rules authenticate and
// authorize). Validation never changes the request: defaults the schema
// declares are not filled in.
type Validator struct {
	// spec is the document's text: a reason may quote only what it says.
	spec   string
	doc    *openapi3.T
	router routers.Router
	depth  int
}

// Load reads, parses and compiles the OpenAPI 3 document at path. The
// document must be self-contained: references to other files or URLs are
// refused, so a spec cannot make the gateway read or fetch anything else.
func Load(path string, o Options) (*Validator, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read OpenAPI document: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSpecSize+1))
	if err != nil {
		return nil, fmt.Errorf("read OpenAPI document: %w", err)
	}
	if len(data) > maxSpecSize {
		return nil, fmt.Errorf("OpenAPI document %s is larger than 16MiB", path)
	}
	return Compile(data, o)
}

// Compile is Load for a document already read.
func Compile(data []byte, o Options) (*Validator, error) {
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("parse OpenAPI document: %w", err)
	}
	if doc.OpenAPI == "" || !strings.HasPrefix(doc.OpenAPI, "3.") {
		return nil, fmt.Errorf("parse OpenAPI document: openapi version %q is not 3.x (write openapi: 3.0.3)", doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("invalid OpenAPI document: %w", err)
	}
	doc.Servers = nil // match paths only (see Validator)
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("compile OpenAPI document: %w", err)
	}
	if o.MaxJSONDepth <= 0 {
		o.MaxJSONDepth = DefaultMaxJSONDepth
	}
	return &Validator{spec: string(data), doc: doc, router: router, depth: o.MaxJSONDepth}, nil
}

// Request is what validation needs of a request, from any engine.
type Request struct {
	// Method is the request method, e.g. "GET".
	Method string
	// Path is the normalized path the backend receives.
	Path string
	// RawQuery is the query without "?".
	RawQuery string
	// Header returns the values of a header field (name in canonical
	// form, e.g. "X-Tenant"); nil when absent. If nil, the request has
	// no headers.
	Header func(name string) []string
	// Body is the request body, read whole (bounded by max_body).
	Body []byte
}

var methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}

// Validate checks r. It returns nil when r conforms to the document, else
// the refusal: 404 for a path the document lacks, 405 for a method its
// path lacks, 400 (or 415) naming the failing parameter or body field.
func (v *Validator) Validate(r *Request) *Problem {
	u := &url.URL{Path: r.Path, RawQuery: r.RawQuery}
	hreq := &http.Request{Method: r.Method, URL: u, Header: http.Header{}}
	route, params, ok := v.find(hreq)
	if !ok {
		return v.routeProblem(hreq)
	}
	// Hand kin-openapi only the headers the operation declares (and the
	// body's type): nothing else of the request is read.
	get := r.Header
	if get == nil {
		get = func(string) []string { return nil }
	}
	for _, ps := range []openapi3.Parameters{route.PathItem.Parameters, route.Operation.Parameters} {
		for _, p := range ps {
			if p.Value != nil && p.Value.In == openapi3.ParameterInHeader {
				name := http.CanonicalHeaderKey(p.Value.Name)
				if vs := get(name); vs != nil {
					hreq.Header[name] = vs
				}
			}
		}
	}
	ct := get("Content-Type")
	if ct != nil {
		hreq.Header["Content-Type"] = ct
	}
	if len(r.Body) > 0 {
		if isJSON(ct) && jsonDepth(r.Body, v.depth) > v.depth {
			return newProblem(400, "body", "JSON nests deeper than "+strconv.Itoa(v.depth)+" levels")
		}
		hreq.Body = io.NopCloser(bytes.NewReader(r.Body))
		hreq.ContentLength = int64(len(r.Body))
	} else {
		hreq.Body = http.NoBody
	}
	query, err := url.ParseQuery(r.RawQuery)
	if err != nil {
		return newProblem(400, "query", "the query string is not valid URL encoding")
	}
	err = openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request:     hreq,
		PathParams:  params,
		QueryParams: query,
		Route:       route,
		Options: &openapi3filter.Options{
			AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
			SkipSettingDefaults: true,
		},
	})
	if err != nil {
		return v.problemOf(err)
	}
	return nil
}

// find matches req to an operation. A template segment must match a
// non-empty segment: kin-openapi's router lets "/orders" match
// "/orders/{id}" with an empty id.
func (v *Validator) find(req *http.Request) (*routers.Route, map[string]string, bool) {
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		return nil, nil, false
	}
	// Nor does it tell "/orders/" from "/orders": the backend may.
	if strings.HasSuffix(req.URL.Path, "/") != strings.HasSuffix(route.Path, "/") {
		return nil, nil, false
	}
	for _, p := range params {
		if p == "" {
			return nil, nil, false
		}
	}
	return route, params, true
}

// routeProblem tells a path the document lacks (404) from a method its
// path lacks (405, with the methods it has).
func (v *Validator) routeProblem(req *http.Request) *Problem {
	var allow []string
	for _, m := range methods {
		if m == req.Method {
			continue
		}
		probe := &http.Request{Method: m, URL: req.URL, Header: req.Header}
		if _, _, ok := v.find(probe); ok {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		return newProblem(404, "path", "no operation of the API matches this path")
	}
	p := newProblem(405, "method", "the API has no such operation on this path (allowed: "+strings.Join(allow, ", ")+")")
	p.Allow = strings.Join(allow, ", ")
	return p
}

func isJSON(ct []string) bool {
	if len(ct) == 0 {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct[0])
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// problemOf turns a kin-openapi error into a Problem. Its messages name
// the field and the rule from the document, never the value: SchemaError
// reasons leave values out by design, and ParseError (whose Error() does
// quote the value) is reduced to its kind.
func (v *Validator) problemOf(err error) *Problem {
	var re *openapi3filter.RequestError
	if !errors.As(err, &re) {
		var se *openapi3filter.SecurityRequirementsError
		if errors.As(err, &se) {
			return newProblem(400, "", "the request does not meet the API's security requirements")
		}
		return newProblem(400, "", "the request does not conform to the API")
	}
	field, what := "body", "request body"
	if p := re.Parameter; p != nil {
		field, what = p.In+"."+p.Name, p.In+" parameter \""+p.Name+"\""
	}
	var se *openapi3.SchemaError
	var pe *openapi3filter.ParseError
	switch {
	case errors.Is(re.Err, openapi3filter.ErrInvalidRequired):
		return newProblem(400, field, what+" is required")
	case errors.Is(re.Err, openapi3filter.ErrInvalidEmptyValue):
		return newProblem(400, field, what+" must not be empty")
	case errors.As(re.Err, &se):
		if ptr := se.JSONPointer(); re.Parameter == nil && len(ptr) > 0 {
			field = "body/" + strings.Join(escapePointer(ptr), "/")
			what = "body field /" + strings.Join(escapePointer(ptr), "/")
		}
		reason := se.Reason
		if se.SchemaField == "additionalProperties" || strings.HasSuffix(reason, " is unsupported") {
			// The reason quotes the client's property name.
			reason = "has a property the schema does not allow"
		}
		if reason == "" || !v.quotesOnlySpec(reason) {
			reason = "does not match the schema's " + strconv.Quote(se.SchemaField) + " rule"
		}
		return newProblem(400, field, what+": "+reason)
	case errors.As(re.Err, &pe):
		return newProblem(400, field, what+": "+parseReason(pe))
	}
	if strings.Contains(re.Reason, "header Content-Type has unexpected value") || strings.Contains(errText(re.Err), "unsupported content type") {
		return newProblem(415, "header.Content-Type", "the API does not accept this content type here")
	}
	return newProblem(400, field, what+" does not conform to the API")
}

// quotesOnlySpec reports whether every quoted part of a reason (a
// property name, a pattern) is text of the document, so that nothing the
// client sent can be echoed through it.
func (v *Validator) quotesOnlySpec(reason string) bool {
	for _, m := range quoted.FindAllStringSubmatch(reason, -1) {
		if !strings.Contains(v.spec, m[1]) {
			return false
		}
	}
	return true
}

var quoted = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`)

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func parseReason(pe *openapi3filter.ParseError) string {
	var inner *openapi3filter.ParseError
	if errors.As(pe.Cause, &inner) {
		pe = inner
	}
	switch pe.Kind {
	case openapi3filter.KindInvalidFormat:
		return "is not in the format the API declares"
	case openapi3filter.KindUnsupportedFormat:
		return "uses a serialization the API does not support"
	}
	if pe.Reason != "" && !strings.Contains(pe.Reason, fmt.Sprint(pe.Value)) {
		return pe.Reason
	}
	return "cannot be parsed as the API declares"
}

func escapePointer(ptr []string) []string {
	out := make([]string, len(ptr))
	for i, s := range ptr {
		out[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
	}
	return out
}
