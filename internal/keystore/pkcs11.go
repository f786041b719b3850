//go:build pkcs11

package keystore

import (
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// PKCS11 reports whether this binary can use PKCS#11 tokens.
const PKCS11 = true

// p11Key is a key pair inside a token. Sign runs in the token; the
// private half is never read out.
type p11Key struct {
	crypto11.Signer
	ctx *crypto11.Context
}

func (k *p11Key) Close() error { return k.ctx.Close() }

// Sign implements crypto.Signer.
func (k *p11Key) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := k.Signer.Sign(r, digest, opts)
	if err != nil {
		return nil, fmt.Errorf("sign in PKCS#11 token: %w", err)
	}
	return sig, nil
}

// configure opens a session on the token u names and logs in with the PIN
// from u.PinSource. Errors name the token and the PIN file, never the PIN.
func configure(u *PKCS11URI) (*crypto11.Context, error) {
	pin, err := u.pin()
	if err != nil {
		return nil, err
	}
	cfg := &crypto11.Config{
		Path: u.ModulePath, TokenLabel: u.Token, TokenSerial: u.Serial, SlotNumber: u.SlotID,
		Pin: pin, LoginNotSupported: u.PinSource == "",
	}
	ctx, err := crypto11.Configure(cfg)
	if err != nil {
		var perr pkcs11.Error
		if errors.As(err, &perr) && (perr == pkcs11.CKR_PIN_INCORRECT || perr == pkcs11.CKR_PIN_INVALID || perr == pkcs11.CKR_PIN_LEN_RANGE) {
			return nil, fmt.Errorf("log in to token %s: the PIN in %s is not accepted (%w)", u.tokenName(), u.PinSource, perr)
		}
		return nil, fmt.Errorf("open token %s with module %s: %w", u.tokenName(), u.ModulePath, err)
	}
	return ctx, nil
}

func (u *PKCS11URI) tokenName() string {
	switch {
	case u.Token != "":
		return fmt.Sprintf("%q", u.Token)
	case u.Serial != "":
		return "with serial " + u.Serial
	}
	return fmt.Sprintf("in slot %d", *u.SlotID)
}

func (u *PKCS11URI) objectName() string {
	if u.Object != "" {
		return fmt.Sprintf("%q", u.Object)
	}
	return fmt.Sprintf("with id %x", u.ID)
}

// OpenPKCS11 opens the key pair u names in its token.
func OpenPKCS11(u *PKCS11URI) (Key, error) {
	if u.Object == "" && len(u.ID) == 0 {
		return nil, errors.New("open PKCS#11 key: the URI names no key (add object=LABEL or id=...)")
	}
	ctx, err := configure(u)
	if err != nil {
		return nil, fmt.Errorf("open PKCS#11 key: %w", err)
	}
	var label []byte
	if u.Object != "" {
		label = []byte(u.Object)
	}
	keys, err := ctx.FindKeyPairs(u.ID, label)
	if err == nil && len(keys) != 1 {
		if len(keys) == 0 {
			err = fmt.Errorf("token %s holds no key pair %s", u.tokenName(), u.objectName())
		} else {
			err = fmt.Errorf("token %s holds %d key pairs %s; add id= to choose one", u.tokenName(), len(keys), u.objectName())
		}
	}
	if err != nil {
		ctx.Close()
		return nil, fmt.Errorf("open PKCS#11 key: %w", err)
	}
	return &p11Key{Signer: keys[0], ctx: ctx}, nil
}

// GeneratePKCS11 creates a key pair of algorithm alg (AlgECDSAP256,
// AlgECDSAP384 or AlgRSA3072) inside the token u names, labelled u.Object,
// with a random CKA_ID. The private key is created sensitive and not
// extractable: it never exists outside the token. It refuses to create a
// second key with a label already in use.
func GeneratePKCS11(u *PKCS11URI, alg string) (Key, error) {
	if u.Object == "" {
		return nil, errors.New("generate PKCS#11 key: the URI names no object= label for the new key")
	}
	ctx, err := configure(u)
	if err != nil {
		return nil, fmt.Errorf("generate PKCS#11 key: %w", err)
	}
	fail := func(err error) (Key, error) {
		ctx.Close()
		return nil, fmt.Errorf("generate PKCS#11 key %s: %w", u.objectName(), err)
	}
	if existing, err := ctx.FindKeyPairs(nil, []byte(u.Object)); err != nil {
		return fail(err)
	} else if len(existing) > 0 {
		return fail(fmt.Errorf("token %s already holds a key labelled %q; choose another object= or delete that key", u.tokenName(), u.Object))
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return fail(err)
	}
	var s crypto11.Signer
	switch alg {
	case "", AlgECDSAP256:
		s, err = ctx.GenerateECDSAKeyPairWithLabel(id, []byte(u.Object), elliptic.P256())
	case AlgECDSAP384:
		s, err = ctx.GenerateECDSAKeyPairWithLabel(id, []byte(u.Object), elliptic.P384())
	case AlgRSA3072:
		s, err = ctx.GenerateRSAKeyPairWithLabel(id, []byte(u.Object), 3072)
	default:
		err = fmt.Errorf("key type %s cannot be generated in a PKCS#11 token (use %s, %s or %s)", alg, AlgECDSAP256, AlgECDSAP384, AlgRSA3072)
	}
	if err != nil {
		return fail(err)
	}
	return &p11Key{Signer: s, ctx: ctx}, nil
}

// NonExtractable reports whether k is a token key whose private half is
// sensitive and not extractable (CKA_SENSITIVE true, CKA_EXTRACTABLE
// false), read back from the token.
func NonExtractable(k Key) (bool, error) {
	pk, ok := k.(*p11Key)
	if !ok {
		return false, errors.New("not a PKCS#11 key")
	}
	attrs, err := pk.ctx.GetAttributes(pk.Signer, []crypto11.AttributeType{crypto11.CkaSensitive, crypto11.CkaExtractable})
	if err != nil {
		return false, err
	}
	sens, ext := attrs[crypto11.CkaSensitive], attrs[crypto11.CkaExtractable]
	if sens == nil || ext == nil {
		return false, errors.New("token did not report CKA_SENSITIVE and CKA_EXTRACTABLE")
	}
	return len(sens.Value) == 1 && sens.Value[0] == 1 && len(ext.Value) == 1 && ext.Value[0] == 0, nil
}
