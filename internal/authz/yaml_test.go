package authz

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestRuleYAML decodes the allow list of DESIGN.md's example configuration
// strictly, as the config loader does, so the yaml tags are the contract.
func TestRuleYAML(t *testing.T) {
	const doc = `
- spiffe_id: "spiffe://example.com/billing/*"
- subject: { cn: partner-a, o: "Partner Inc", ou: billing, c: US }
- san_dns: "*.svc.example.com"
- fingerprint_sha256: "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"
- san_uri: "urn:example:partner-a"
  san_email: ops@example.com
  san_ip: 10.0.0.0/8
  issuer: pki/ca.pem
  spki_sha256: "d6qzRu9zOECb90Uez27xWltNsj0e1Md7GkYYkVoZWmM="
`
	var rules []Rule
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatal(err)
	}
	want := []Rule{
		{SPIFFEID: "spiffe://example.com/billing/*"},
		{Subject: Subject{CN: "partner-a", O: "Partner Inc", OU: "billing", C: "US"}},
		{SANDNS: "*.svc.example.com"},
		{FingerprintSHA256: "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"},
		{SANURI: "urn:example:partner-a", SANEmail: "ops@example.com", SANIP: "10.0.0.0/8", Issuer: "pki/ca.pem",
			SPKISHA256: "d6qzRu9zOECb90Uez27xWltNsj0e1Md7GkYYkVoZWmM="},
	}
	if len(rules) != len(want) {
		t.Fatalf("decoded %d rules, want %d", len(rules), len(want))
	}
	for i := range want {
		if rules[i] != want[i] {
			t.Errorf("rule %d = %+v, want %+v", i, rules[i], want[i])
		}
	}

	dec = yaml.NewDecoder(strings.NewReader("- spiffe_ids: x\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err == nil {
		t.Error("unknown key spiffe_ids accepted")
	}
}
