package authz

import (
	"crypto/x509/pkix"
	"net/url"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testpki"
)

func TestEvaluateEmptyAndNil(t *testing.T) {
	id := issue(t, testpki.NewRoot(t, "root"), certOpts{names: []pkix.AttributeTypeAndValue{cn("x")}})
	empty := mustCompile(t)
	var nilPolicy *Policy
	for name, p := range map[string]*Policy{"empty": empty, "nil": nilPolicy} {
		if d := p.Evaluate(id); !d.Allowed || d.Rule != -1 || d.Reason != "" {
			t.Errorf("%s policy, identity: %+v, want allowed by no rule", name, d)
		}
		if d := p.Evaluate(nil); d.Allowed || d.Rule != -1 || d.Reason == "" {
			t.Errorf("%s policy, nil identity: %+v, want denied with reason", name, d)
		}
	}
	if d := mustCompile(t, Rule{Subject: Subject{CN: "x"}}).Evaluate(nil); d.Allowed {
		t.Errorf("nil identity allowed: %+v", d)
	}
}

func TestEvaluateAndOr(t *testing.T) {
	ca := testpki.NewRoot(t, "root")
	id := issue(t, ca, certOpts{
		names: []pkix.AttributeTypeAndValue{cn("partner-a"), org("Partner Inc")},
		dns:   []string{"orders.svc.example.com"},
		uris:  []*url.URL{mustURL(t, "spiffe://example.com/billing/api")},
	})
	p := mustCompile(t,
		Rule{SPIFFEID: "spiffe://example.com/billing/*", Subject: Subject{CN: "someone-else"}}, // AND fails
		Rule{SANDNS: "*.other.example.com"},
		Rule{SPIFFEID: "spiffe://example.com/billing/*", Subject: Subject{CN: "partner-a", O: "Partner Inc"}},
		Rule{SANDNS: "*.svc.example.com"},
	)
	d := p.Evaluate(id)
	if !d.Allowed || d.Rule != 2 || d.Reason != "" {
		t.Fatalf("Evaluate = %+v, want allowed by rule 2", d)
	}
}

func TestEvaluateDenyReason(t *testing.T) {
	ca := testpki.NewRoot(t, "root")
	id := issue(t, ca, certOpts{
		names: []pkix.AttributeTypeAndValue{cn("guest"), cn("admin")},
		uris:  []*url.URL{mustURL(t, "spiffe://example.com/a"), mustURL(t, "spiffe://example.com/b")},
		dns:   []string{"a.example.com"},
	})
	for _, tc := range []struct {
		name  string
		rules []Rule
		want  string
	}{
		{"one rule", []Rule{{SANDNS: "b.example.com"}},
			"no allow rule matched: allow[0] san_dns: no match"},
		{"first failing field is named", []Rule{{SANDNS: "a.example.com", Subject: Subject{CN: "admin"}}},
			"no allow rule matched: allow[0] subject.cn: attribute present more than once"},
		{"several", []Rule{{SPIFFEID: "spiffe://example.com/*"}, {SANEmail: "a@example.com"}, {SANIP: "10.0.0.1"}},
			"no allow rule matched: allow[0] spiffe_id: more than one URI SAN (an SVID has exactly one); allow[1] san_email: no email SAN; allow[2] san_ip: no IP SAN"},
		{"capped", []Rule{{SANDNS: "1.example.com"}, {SANDNS: "2.example.com"}, {SANDNS: "3.example.com"}, {SANDNS: "4.example.com"}, {SANDNS: "5.example.com"}, {SANDNS: "6.example.com"}},
			"no allow rule matched: allow[0] san_dns: no match; allow[1] san_dns: no match; allow[2] san_dns: no match; allow[3] san_dns: no match; and 2 more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := mustCompile(t, tc.rules...).Evaluate(id)
			if d.Allowed || d.Rule != -1 || d.Reason != tc.want {
				t.Fatalf("Evaluate =\n  %+v\nwant reason\n  %s", d, tc.want)
			}
		})
	}
}

func TestEvaluateAllowDoesNotAllocate(t *testing.T) {
	ca := testpki.NewRoot(t, "root")
	id := issue(t, ca, certOpts{
		names: []pkix.AttributeTypeAndValue{cn("partner-a"), org("Partner Inc")},
		dns:   []string{"orders.svc.example.com"},
		uris:  []*url.URL{mustURL(t, "spiffe://example.com/billing/api")},
	})
	p := mustCompile(t,
		Rule{SANDNS: "*.other.example.com"},
		Rule{SPIFFEID: "spiffe://example.com/billing/**", Subject: Subject{CN: "partner-a", O: "Partner Inc"}, SANDNS: "*.svc.example.com"},
	)
	if n := testing.AllocsPerRun(100, func() { _ = p.Evaluate(id) }); n != 0 {
		t.Fatalf("Evaluate allocated %v times per allowed request, want 0", n)
	}
}
