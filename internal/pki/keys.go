package pki

import (
	"crypto"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/gatehouse/gatehouse/internal/keystore"
)

// KeyRefs say where a CA's keys live when they are not the encrypted
// files in the CA directory: PKCS#11 URIs of key pairs in a token.
type KeyRefs struct {
	Root         string `json:"root"`
	Intermediate string `json:"intermediate,omitempty"`
}

// DefaultKeyLabel prefixes the labels of keys `ca init --key-store` creates
// in a token when its URI has no object=: gatehouse-ca-root and
// gatehouse-ca-intermediate.
const DefaultKeyLabel = "gatehouse-ca"

// tokenKeyURIs returns the URIs of the root and intermediate keys Init
// creates in the token that keyStore names (its object= is a label
// prefix).
func tokenKeyURIs(keyStore string) (root, inter *keystore.PKCS11URI, err error) {
	u, err := keystore.ParsePKCS11URI(keyStore)
	if err != nil {
		return nil, nil, err
	}
	prefix := cmp(u.Object, DefaultKeyLabel)
	if len(u.ID) > 0 {
		return nil, nil, errors.New("--key-store: leave id= out; gatehouse gives each key it creates a random id")
	}
	return u.WithObject(prefix + "-root"), u.WithObject(prefix + "-intermediate"), nil
}

// generateKey creates a CA key: in the token when uri is set (it never
// leaves it), else in memory (Init then writes it encrypted).
func generateKey(kt KeyType, uri *keystore.PKCS11URI) (crypto.Signer, error) {
	if uri == nil {
		return kt.Generate()
	}
	return keystore.GeneratePKCS11(uri, string(kt))
}

// closeKey releases a token key; on discard it also deletes it from the
// token, so that a failed init can be run again.
func closeKey(k crypto.Signer, discard bool) {
	if d, ok := k.(interface{ Delete() error }); ok && discard {
		d.Delete()
	}
	if c, ok := k.(keystore.Key); ok {
		c.Close()
	}
}

// openTokenKey opens the issuing key of a CA whose keys are in a token.
func (ca *CA) openTokenKey() error {
	ref := ca.settings.Keys.Root
	if ca.settings.Intermediate {
		ref = ca.settings.Keys.Intermediate
	}
	k, err := keystore.Open(ref, nil)
	if err != nil {
		return fmt.Errorf("open CA key: %w", err)
	}
	if !samePublicKey(k.Public(), ca.issuer.PublicKey) {
		k.Close()
		return fmt.Errorf("open CA key %s: the token key does not match %s", ref, ca.issuer.Subject.CommonName)
	}
	ca.key = k
	return nil
}

// InToken reports whether the CA's keys live in a PKCS#11 token (no
// passphrase is needed to open it).
func (s Settings) InToken() bool { return s.Keys != nil }

// OpenRootKey opens the root's key, for the rare operations that need it
// when an intermediate signs everything else (a CRL for the root,
// re-issuing the intermediate): from the token, or DIR/ca-key.pem
// decrypted with passphrase. The caller closes it with CloseKey.
func (ca *CA) OpenRootKey(passphrase []byte) (crypto.Signer, error) {
	var (
		k   crypto.Signer
		err error
	)
	if ca.settings.InToken() {
		k, err = keystore.Open(ca.settings.Keys.Root, nil)
	} else {
		k, err = keystore.Open(filepath.Join(ca.dir, RootKeyFile), passphrase)
	}
	if err != nil {
		return nil, fmt.Errorf("open root key: %w", err)
	}
	if !samePublicKey(k.Public(), ca.root.PublicKey) {
		closeKey(k, false)
		return nil, errors.New("open root key: it does not match " + RootCertFile)
	}
	if fk, ok := k.(keystore.FileKey); ok {
		return fk.Signer, nil
	}
	return k, nil
}

// CloseKey releases a key OpenRootKey returned (a token session).
func CloseKey(k crypto.Signer) { closeKey(k, false) }
