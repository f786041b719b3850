package keystore

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/secretfile"
)

// PKCS11URI is an RFC 7512 PKCS#11 URI naming a key in a token, as
// gatehouse accepts it:
//
//	pkcs11:token=gatehouse;object=intermediate?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/gatehouse/pin
//
// The token is chosen by token (label), serial or slot-id; the key by
// object (CKA_LABEL) and/or id (CKA_ID, percent-encoded bytes). The PIN is
// read from the file pin-source names; pin-value is refused, so that a PIN
// never sits in a configuration file, a command line or a log.
type PKCS11URI struct {
	Token, Serial string
	SlotID        *int
	Object        string
	ID            []byte
	ModulePath    string
	// PinSource is the path of the file holding the PIN (read by
	// secretfile.Read); empty for a token without login.
	PinSource string
}

const errPinValue = "pin-value is not accepted: put the PIN in a file readable only by gatehouse and use pin-source=file:/path"

var (
	pathAttrs  = []string{"token", "serial", "slot-id", "object", "id", "type", "manufacturer", "model"}
	queryAttrs = []string{"module-path", "pin-source"}
)

// ParsePKCS11URI parses s. It refuses unknown attributes, pin-value, and a
// URI without a module path or without a token.
func ParsePKCS11URI(s string) (*PKCS11URI, error) {
	fail := func(format string, a ...any) error {
		// The URI itself carries no secret (pin-value is refused before
		// anything quotes it), but keep messages short: name the problem.
		return fmt.Errorf("PKCS#11 URI: "+format, a...)
	}
	if !IsPKCS11(s) {
		return nil, fail("must start with pkcs11:")
	}
	// Anywhere, even inside another attribute's value (a misplaced ';'
	// would make it one, and a module path is quoted in errors).
	if strings.Contains(s, "pin-value") {
		return nil, fail(errPinValue)
	}
	rest := s[len("pkcs11:"):]
	path, query, _ := strings.Cut(rest, "?")
	u := &PKCS11URI{}
	seen := map[string]bool{}
	// RFC 7512: path attributes separated by ';', query attributes by '&';
	// values are percent-encoded. net/url does the decoding.
	parse := func(part, sep string, allowed []string) error {
		if part == "" {
			return nil
		}
		for _, kv := range strings.Split(part, sep) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fail("attribute %q is not name=value", kv)
			}

			if !contains(allowed, k) {
				return fail("unknown attribute %q (accepted: %s; and after ?: %s)", k,
					strings.Join(pathAttrs, ", "), strings.Join(queryAttrs, ", "))
			}
			if seen[k] {
				return fail("attribute %q given twice", k)
			}
			seen[k] = true
			val, err := url.PathUnescape(v)
			if err != nil {
				return fail("attribute %q: bad percent-encoding", k)
			}
			if strings.Contains(val, "pin-value") {
				return fail(errPinValue)
			}
			switch k {
			case "token":
				u.Token = val
			case "serial":
				u.Serial = val
			case "slot-id":
				n, err := strconv.Atoi(val)
				if err != nil || n < 0 {
					return fail("slot-id %q is not a slot number", val)
				}
				u.SlotID = &n
			case "object":
				u.Object = val
			case "id":
				u.ID = []byte(val)
			case "type":
				if val != "private" {
					return fail("type=%s: gatehouse uses private keys (type=private)", val)
				}
			case "module-path":
				u.ModulePath = val
			case "pin-source":
				u.PinSource = strings.TrimPrefix(val, "file:")
				if u.PinSource == "" {
					return fail("pin-source is empty (use pin-source=file:/path/to/pin)")
				}
			}
		}
		return nil
	}
	if err := parse(path, ";", pathAttrs); err != nil {
		return nil, err
	}
	if err := parse(query, "&", queryAttrs); err != nil {
		return nil, err
	}
	if u.ModulePath == "" {
		return nil, fail("module-path is required (like ?module-path=/usr/lib/softhsm/libsofthsm2.so)")
	}
	n := 0
	for _, set := range []bool{u.Token != "", u.Serial != "", u.SlotID != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, fail("name the token by exactly one of token=, serial= or slot-id=")
	}
	return u, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// String formats u as a PKCS#11 URI that ParsePKCS11URI reads back.
func (u *PKCS11URI) String() string {
	esc := func(s string) string {
		// Attribute values: everything but unreserved characters and a few
		// safe ones is percent-encoded, ';' '?' '&' '=' in particular.
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~/:", c) >= 0 {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
		return b.String()
	}
	var path []string
	if u.Token != "" {
		path = append(path, "token="+esc(u.Token))
	}
	if u.Serial != "" {
		path = append(path, "serial="+esc(u.Serial))
	}
	if u.SlotID != nil {
		path = append(path, "slot-id="+strconv.Itoa(*u.SlotID))
	}
	if u.Object != "" {
		path = append(path, "object="+esc(u.Object))
	}
	if len(u.ID) > 0 {
		path = append(path, "id="+esc(string(u.ID)))
	}
	q := []string{"module-path=" + esc(u.ModulePath)}
	if u.PinSource != "" {
		q = append(q, "pin-source=file:"+esc(u.PinSource))
	}
	sort.Strings(q)
	return "pkcs11:" + strings.Join(path, ";") + "?" + strings.Join(q, "&")
}

// WithObject returns a copy of u naming the key labelled object.
func (u *PKCS11URI) WithObject(object string) *PKCS11URI {
	c := *u
	c.Object, c.ID = object, nil
	return &c
}

// pin reads the PIN from PinSource by the rule of every secret file
// (secretfile.Read). Errors name the file, never its content.
func (u *PKCS11URI) pin() (string, error) {
	if u.PinSource == "" {
		return "", nil
	}
	b, err := secretfile.Read(u.PinSource, "PIN")
	if err != nil {
		return "", err
	}
	return string(b), nil
}
