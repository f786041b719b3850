package authz

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/identity"
	"github.com/gatehouse/gatehouse/internal/testpki"
)

// colons formats a digest as openssl prints it: "AB:CD:...".
func colons(d [32]byte) string {
	h := strings.ToUpper(hex.EncodeToString(d[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

func TestFingerprintAndSPKI(t *testing.T) {
	root := testpki.NewRoot(t, "root")
	key := testpki.NewKey(t)
	leaf := root.Leaf(t, testpki.LeafOptions{CN: "a", Key: key})
	sameKey := root.Leaf(t, testpki.LeafOptions{CN: "a", Key: key}) // re-issued
	other := root.Client(t, "a")
	id, reissued, otherID := identity.New(leaf.Chain), identity.New(sameKey.Chain), identity.New(other.Chain)

	fp := sha256.Sum256(leaf.Cert.Raw)
	spki := sha256.Sum256(leaf.Cert.RawSubjectPublicKeyInfo)
	for _, tc := range []struct {
		name string
		rule Rule
		// want[i] is the decision for id, reissued, otherID.
		want [3]bool
	}{
		{"fingerprint hex", Rule{FingerprintSHA256: hex.EncodeToString(fp[:])}, [3]bool{true, false, false}},
		{"fingerprint upper hex", Rule{FingerprintSHA256: strings.ToUpper(hex.EncodeToString(fp[:]))}, [3]bool{true, false, false}},
		{"fingerprint colons", Rule{FingerprintSHA256: colons(fp)}, [3]bool{true, false, false}},
		{"spki hex", Rule{SPKISHA256: hex.EncodeToString(spki[:])}, [3]bool{true, true, false}},
		{"spki colons", Rule{SPKISHA256: strings.ToLower(colons(spki))}, [3]bool{true, true, false}},
		{"spki base64", Rule{SPKISHA256: base64.StdEncoding.EncodeToString(spki[:])}, [3]bool{true, true, false}},
		{"fingerprint and spki", Rule{FingerprintSHA256: colons(fp), SPKISHA256: base64.StdEncoding.EncodeToString(spki[:])}, [3]bool{true, false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, tc.rule)
			for i, id := range []*identity.Identity{id, reissued, otherID} {
				if got := p.Evaluate(id).Allowed; got != tc.want[i] {
					t.Errorf("identity %d: Allowed = %v, want %v", i, got, tc.want[i])
				}
			}
		})
	}
}

func TestIssuer(t *testing.T) {
	dir := t.TempDir()
	root := testpki.NewRoot(t, "root")
	inter := root.Intermediate(t, "issuing")
	otherRoot := testpki.NewRoot(t, "root") // same name, different key
	viaInter := verify(t, root, inter.Client(t, "a"))
	direct := verify(t, root, root.Client(t, "b"))
	foreign := verify(t, otherRoot, otherRoot.Client(t, "c"))
	selfSigned := identity.New(viaInter.Chain[:1]) // a chain of just the leaf

	interPath := inter.WriteCert(t, dir, "inter.pem")
	rootPath := root.WriteCert(t, dir, "root.pem")
	bundle := filepath.Join(dir, "bundle.pem")
	testpki.WriteFile(t, bundle, append(otherRoot.CertPEM(), inter.CertPEM()...))

	for _, tc := range []struct {
		name string
		path string
		id   *identity.Identity
		want bool
	}{
		{"intermediate issued", interPath, viaInter, true},
		{"root above intermediate", rootPath, viaInter, true},
		{"root issued directly", rootPath, direct, true},
		{"intermediate not in chain", interPath, direct, false},
		{"same name other key", rootPath, foreign, false},
		{"bundle, second cert", bundle, viaInter, true},
		{"bundle, first cert", bundle, foreign, true},
		{"leaf alone has no issuer", interPath, selfSigned, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := mustCompile(t, Rule{Issuer: tc.path}).Evaluate(tc.id)
			if d.Allowed != tc.want {
				t.Fatalf("Evaluate = %+v, want Allowed=%v", d, tc.want)
			}
		})
	}
}

// verify runs crypto/x509 verification as the listener does and returns the
// identity of the first verified chain.
func verify(t *testing.T, root *testpki.CA, leaf *testpki.Leaf) *identity.Identity {
	t.Helper()
	chains, err := leaf.Cert.Verify(verifyOpts(root, leaf))
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return identity.New(chains[0])
}
