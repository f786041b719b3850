package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// secretFileWarnings names each private key or passphrase file the
// configuration points at that group or others may read, located as a
// config error is (file:line: field: problem (fix)). They are warnings,
// not errors: the file may sit on a volume whose modes the operator does
// not control, but a key readable by others should be a choice.
func secretFileWarnings(f *config.File) []string {
	c := &f.Config
	var out []string
	check := func(field, p string) {
		if p == "" || strings.HasPrefix(p, "pkcs11:") {
			return
		}
		path := f.Resolve(p)
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm()&0o077 == 0 {
			return // a missing file is reported by the check itself
		}
		out = append(out, fmt.Sprintf("%s:%d: %s: %s is readable by group or others (mode %04o) (chmod 600 %s)",
			f.Path, f.Line(field), field, p, fi.Mode().Perm(), path))
	}
	for i, ck := range c.ServerTLS.Certificates {
		field := "server_tls.certificates[" + strconv.Itoa(i) + "]"
		check(field+".key", ck.Key)
		check(field+".key_passphrase_file", ck.KeyPassphraseFile)
	}
	for i, r := range c.Routes {
		if u := r.UpstreamTLS; u != nil {
			check("routes["+strconv.Itoa(i)+"].upstream_tls.key", u.Key)
		}
	}
	return out
}

// checkWarnings is what `config check` warns about: secretFileWarnings,
// and client_auth.allow_missing_eku when it is on (serve logs that one at
// every start and reload from the gateway itself).
func checkWarnings(f *config.File) []string {
	c := &f.Config
	out := secretFileWarnings(f)
	if c.ClientAuth.AllowMissingEKU && c.ClientAuth.Mode != config.ModeNone {
		out = append(out, fmt.Sprintf("%s:%d: client_auth.allow_missing_eku: client certificates without any extended key usage extension are accepted "+
			"(reissue them with extendedKeyUsage=clientAuth, then remove this setting)", f.Path, f.Line("client_auth.allow_missing_eku")))
	}
	return out
}
