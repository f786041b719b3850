package validate

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func load(t testing.TB) *Validator {
	t.Helper()
	v, err := Load("testdata/orders.yaml", Options{MaxJSONDepth: 8})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// secret marks the offending values: no refusal may echo them.
const secret = "Zq9SECRETx"

func req(method, path, query string, hdr map[string]string, body string) *Request {
	h := http.Header{}
	for k, v := range hdr {
		h.Set(k, v)
	}
	return &Request{Method: method, Path: path, RawQuery: query, Body: []byte(body),
		Header: func(name string) []string { return h[name] }}
}

var (
	tenant   = map[string]string{"X-Tenant": "acme"}
	jsonBody = map[string]string{"X-Tenant": "acme", "Content-Type": "application/json"}
	goodBody = `{"customer":{"id":"c-42","email":"a@example.com"},"items":[{"sku":"AB-1","qty":2}]}`
)

func TestValidate(t *testing.T) {
	v := load(t)
	for _, tc := range []struct {
		name   string
		r      *Request
		status int    // 0: valid
		field  string // the field the problem must name
	}{
		{"list ok", req("GET", "/orders", "limit=10&status=open", tenant, ""), 0, ""},
		{"get by id ok", req("GET", "/orders/42", "", nil, ""), 0, ""},
		{"delete ok", req("DELETE", "/orders/7", "", nil, ""), 0, ""},
		{"create ok", req("POST", "/orders", "", jsonBody, goodBody), 0, ""},
		{"create with json charset ok", req("POST", "/orders", "", map[string]string{"X-Tenant": "acme", "Content-Type": "application/json; charset=utf-8"}, goodBody), 0, ""},

		{"unknown path", req("GET", "/customers", "", tenant, ""), 404, "path"},
		{"unknown nested path", req("GET", "/orders/42/items", "", tenant, ""), 404, "path"},
		{"wrong method", req("PUT", "/orders", "", tenant, ""), 405, "method"},
		{"wrong method on template", req("POST", "/orders/42", "", tenant, ""), 405, "method"},

		{"path param not integer", req("GET", "/orders/"+secret, "", nil, ""), 400, "path.id"},
		{"path param below minimum", req("GET", "/orders/0", "", nil, ""), 400, "path.id"},
		{"query not integer", req("GET", "/orders", "limit="+secret, tenant, ""), 400, "query.limit"},
		{"query above maximum", req("GET", "/orders", "limit=1000", tenant, ""), 400, "query.limit"},
		{"query not in enum", req("GET", "/orders", "status="+secret, tenant, ""), 400, "query.status"},
		{"query bad encoding", req("GET", "/orders", "limit=%zz", tenant, ""), 400, "query"},
		{"required header missing", req("GET", "/orders", "", nil, ""), 400, "header.X-Tenant"},
		{"header fails pattern", req("GET", "/orders", "", map[string]string{"X-Tenant": secret}, ""), 400, "header.X-Tenant"},

		{"body missing", req("POST", "/orders", "", jsonBody, ""), 400, "body"},
		{"body not json", req("POST", "/orders", "", jsonBody, "{"+secret), 400, "body"},
		{"body wrong content type", req("POST", "/orders", "", map[string]string{"X-Tenant": "acme", "Content-Type": "text/plain"}, secret), 415, "header.Content-Type"},
		{"body required property", req("POST", "/orders", "", jsonBody, `{"customer":{"id":"c-42"}}`), 400, "body/items"},
		{"body nested required", req("POST", "/orders", "", jsonBody, `{"customer":{"email":"a@example.com"},"items":[{"sku":"A","qty":1}]}`), 400, "body/customer/id"},
		{"body nested type", req("POST", "/orders", "", jsonBody, `{"customer":{"id":"c-42"},"items":[{"sku":"A","qty":"`+secret+`"}]}`), 400, "body/items/0/qty"},
		{"body nested minimum", req("POST", "/orders", "", jsonBody, `{"customer":{"id":"c-42"},"items":[{"sku":"A","qty":1},{"sku":"B","qty":-5}]}`), 400, "body/items/1/qty"},
		{"body nested pattern", req("POST", "/orders", "", jsonBody, `{"customer":{"id":"c-42"},"items":[{"sku":"`+secret+`","qty":1}]}`), 400, "body/items/0/sku"},
		{"body string too short", req("POST", "/orders", "", jsonBody, `{"customer":{"id":"c"},"items":[{"sku":"A","qty":1}]}`), 400, "body/customer/id"},
		{"body empty array", req("POST", "/orders", "", jsonBody, `{"customer":{"id":"c-42"},"items":[]}`), 400, "body/items"},
		{"body extra property", req("POST", "/orders", "", jsonBody, `{"customer":{"id":"c-42"},"items":[{"sku":"A","qty":1}],"`+secret+`":1}`), 400, "body"},
		{"body too deep", req("POST", "/orders", "", jsonBody, `{"customer":{"id":"c-42"},"items":[{"sku":"A","qty":1}],"note":[[[[[[[[[1]]]]]]]]]}`), 400, "body"},
		{"body header missing", req("POST", "/orders", "", map[string]string{"Content-Type": "application/json"}, goodBody), 400, "header.X-Tenant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := v.Validate(tc.r)
			if tc.status == 0 {
				if p != nil {
					t.Fatalf("valid request refused: %v", p)
				}
				return
			}
			if p == nil {
				t.Fatalf("accepted; want %d on %s", tc.status, tc.field)
			}
			body := p.JSON()
			t.Logf("%d %s", p.Status, body)
			if p.Status != tc.status || p.Field != tc.field {
				t.Fatalf("got %d on %q; want %d on %q (%s)", p.Status, p.Field, tc.status, tc.field, p.Detail)
			}
			if strings.Contains(string(body), secret) || strings.Contains(string(body), "-5") || strings.Contains(string(body), "1000") {
				t.Fatalf("problem echoes the offending value: %s", body)
			}
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			if m["type"] != "about:blank" || m["title"] != http.StatusText(tc.status) || m["status"] != float64(tc.status) || m["detail"] == "" {
				t.Fatalf("not an RFC 9457 problem: %s", body)
			}
			if tc.status == 405 && p.Allow == "" {
				t.Fatal("405 without Allow")
			}
		})
	}
}

func TestMethodNotAllowedNamesAllowed(t *testing.T) {
	v := load(t)
	for path, want := range map[string]string{"/orders/3": "GET, DELETE", "/orders": "GET, POST"} {
		p := v.Validate(req("PATCH", path, "", nil, ""))
		if p == nil || p.Status != 405 || p.Allow != want {
			t.Errorf("PATCH %s: got %+v; want 405 with Allow: %s", path, p, want)
		}
	}
	// "/orders/" does not carry an empty {id}.
	if p := v.Validate(req("DELETE", "/orders/", "", nil, "")); p == nil || p.Status != 404 {
		t.Errorf("DELETE /orders/: %+v; want 404", p)
	}
}

func TestBrokenSpecs(t *testing.T) {
	dir := t.TempDir()
	for name, spec := range map[string]string{
		"not yaml":      "openapi: [3.0.3\n",
		"swagger 2":     "swagger: \"2.0\"\ninfo: {title: x, version: \"1\"}\npaths: {}\n",
		"bad schema":    "openapi: 3.0.3\ninfo: {title: x, version: \"1\"}\npaths:\n  /a:\n    get:\n      parameters: [{name: q, in: query, schema: {type: integr}}]\n      responses: {\"200\": {description: ok}}\n",
		"dangling ref":  "openapi: 3.0.3\ninfo: {title: x, version: \"1\"}\npaths:\n  /a:\n    post:\n      requestBody: {content: {application/json: {schema: {$ref: \"#/components/schemas/Nope\"}}}}\n      responses: {\"200\": {description: ok}}\n",
		"external ref":  "openapi: 3.0.3\ninfo: {title: x, version: \"1\"}\npaths:\n  /a:\n    post:\n      requestBody: {content: {application/json: {schema: {$ref: \"other.yaml#/X\"}}}}\n      responses: {\"200\": {description: ok}}\n",
		"path no param": "openapi: 3.0.3\ninfo: {title: x, version: \"1\"}\npaths:\n  /a/{id}:\n    get:\n      responses: {\"200\": {description: ok}}\n",
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
		os.WriteFile(p, []byte(spec), 0o600)
		os.WriteFile(filepath.Join(dir, "other.yaml"), []byte("X: {type: string}\n"), 0o600)
		if _, err := Load(p, Options{}); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml"), Options{}); err == nil {
		t.Error("a missing file was accepted")
	}
}

func TestLimits(t *testing.T) {
	l := Limits{MaxURLLength: 20, MaxHeaders: 3, MaxQueryParams: 2}
	for _, tc := range []struct {
		target, query string
		headers       int
		status        int
	}{
		{"/a?x=1&y=2", "x=1&y=2", 3, 0},
		{"/aaaaaaaaaaaaaaaaaaaaa", "", 1, 414},
		{"/a", "", 4, 431},
		{"/a?x&y&z", "x&y&z", 1, 400},
		{"/a?x&&y&", "x&&y&", 1, 0},
	} {
		p := l.Check(tc.target, tc.headers, tc.query)
		if (p == nil) != (tc.status == 0) || (p != nil && p.Status != tc.status) {
			t.Errorf("Check(%q, %d) = %v; want %d", tc.target, tc.headers, p, tc.status)
		}
	}
	if (&Limits{}).Check(strings.Repeat("a", 1<<16), 1000, strings.Repeat("a&", 1000)) != nil {
		t.Error("zero limits refused")
	}
}

func TestJSONDepth(t *testing.T) {
	for in, want := range map[string]int{
		`1`: 0, `{}`: 1, `[[]]`: 2, `{"a":[{"b":1}]}`: 3, `"[[[["`: 0, `{"a":"\"[[["}`: 1, `[[[[`: 4,
	} {
		if got := jsonDepth([]byte(in), 100); got != want {
			t.Errorf("jsonDepth(%s) = %d; want %d", in, got, want)
		}
	}
}

func BenchmarkValidatePost(b *testing.B) {
	v := load(b)
	r := req("POST", "/orders", "", jsonBody, goodBody)
	b.ReportAllocs()
	for b.Loop() {
		if p := v.Validate(r); p != nil {
			b.Fatal(p)
		}
	}
}
