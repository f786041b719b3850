package validate

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzValidate feeds arbitrary requests to the validator's entry: it must
// never panic, a refusal must be a well-formed problem with a known
// status, and a refusal must not echo a marked value from the request.
func FuzzValidate(f *testing.F) {
	v, err := Load("testdata/orders.yaml", Options{MaxJSONDepth: 16})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("GET", "/orders", "limit=10", "acme", "", "")
	f.Add("POST", "/orders", "", "acme", "application/json", goodBody)
	f.Add("GET", "/orders/42", "", "", "", "")
	f.Add("POST", "/orders", "", "acme", "application/json", `{"customer":{"id":"x"},"items":[{"sku":"a","qty":"b"}],"z":1}`)
	f.Add("DELETE", "/orders/{id}", "a=%zz&b", "\x00", "application/json; charset=utf-8", `[[[[[[`)
	f.Add("POST", "/orders", "limit=Qx7MARKq", "Qx7MARKq", "application/json", `{"customer":{"id":"Qx7MARKq"},"items":[{"sku":"Qx7MARKq","qty":1}],"Qx7MARKq":1}`)
	f.Add("GET", "/orders/Qx7MARKq", "status=Qx7MARKq", "Qx7MARKq", "", "")
	f.Fuzz(func(t *testing.T, method, path, query, tenant, ctype, body string) {
		hdr := map[string]string{}
		if tenant != "" {
			hdr["X-Tenant"] = tenant
		}
		if ctype != "" {
			hdr["Content-Type"] = ctype
		}
		p := v.Validate(req(method, path, query, hdr, body))
		if p == nil {
			return
		}
		switch p.Status {
		case 400, 404, 405, 415:
		default:
			t.Fatalf("status %d", p.Status)
		}
		var m map[string]any
		if err := json.Unmarshal(p.JSON(), &m); err != nil {
			t.Fatalf("problem is not JSON: %v", err)
		}
		const mark = "Qx7MARKq"
		if strings.Contains(body+query+tenant, mark) && strings.Contains(p.Detail, mark) {
			t.Fatalf("problem echoes the request: %s", p.Detail)
		}
	})
}

// FuzzJSONDepth: on valid JSON the depth scanner agrees with a depth
// computed from encoding/json's tokens.
func FuzzJSONDepth(f *testing.F) {
	for _, s := range []string{`{}`, `[[1,[2]]]`, `{"a":"[[\"{"}`, `"\\"`, `[{"a":[{}]}]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !json.Valid([]byte(s)) {
			jsonDepth([]byte(s), 64) // must not panic
			return
		}
		dec := json.NewDecoder(strings.NewReader(s))
		depth, deepest := 0, 0
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			switch tok {
			case json.Delim('['), json.Delim('{'):
				depth++
				deepest = max(deepest, depth)
			case json.Delim(']'), json.Delim('}'):
				depth--
			}
		}
		if got := jsonDepth([]byte(s), 1<<30); got != deepest {
			t.Fatalf("jsonDepth(%q) = %d; encoding/json says %d", s, got, deepest)
		}
	})
}
