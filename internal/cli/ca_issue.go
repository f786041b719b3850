package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/pki"
	"github.com/gatehouse/gatehouse/internal/serial"
)

func newCAIssueCmd(env *Env) *cobra.Command {
	var (
		f                                   caFlags
		profile, cn, validity, out, keyType string
		dns, ips, uris, emails              []string
		p12, p12Legacy, force               bool
		p12PasswordFile, keyPassphraseFile  string
	)
	cmd := &cobra.Command{
		Use:   "issue --dir DIR --profile server|client --cn NAME [--dns N]... [--ip A]... [--uri U]... [--email E]... --out PREFIX",
		Short: "Issue a certificate and its key",
		Long: `Generate a key and issue a certificate for it. Writes PREFIX.pem (the
certificate followed by the intermediates, never the root), PREFIX-key.pem
(PKCS#8; encrypted with --key-passphrase-file, else unencrypted, mode 0600)
and with --p12 also PREFIX.p12 (PKCS#12 with the password from
--p12-password-file; modern PBES2/AES-256 encryption, or 3DES/SHA-1 with
--p12-legacy for old keystores). An existing PREFIX.pem, PREFIX-key.pem or
PREFIX.p12 is not overwritten unless --force is given (with --force, a
PREFIX.p12 left from before is removed when --p12 is not given, so no stale
keystore stays beside the new key). All files are written to temporary
files first and renamed into place together.

Profiles: server (serverAuth, needs at least one --dns or --ip) and client
(clientAuth). --validity defaults to 90d and is bounded by the CA's maximum.`,
		Example: `  gatehouse ca issue --dir pki --profile server --cn api.example.com --dns api.example.com --out api
  gatehouse ca issue --dir pki --profile client --cn partner-a \
      --uri spiffe://example.com/partner-a --out partner-a --p12 --p12-password-file p12-pass.txt`,
		Args: cobra.NoArgs,
		RunE: caRunE(func() error {
			// Everything the user gave is checked before the CA is opened,
			// so that a mistake costs nothing and leaves nothing.
			req, err := issueRequest(profile, cn, validity, keyType, dns, ips, uris, emails)
			if err != nil {
				return err
			}
			if p12Legacy && !p12 {
				return usageError(errors.New("--p12-legacy needs --p12"))
			}
			if p12 != (p12PasswordFile != "") {
				return usageError(errors.New("--p12 and --p12-password-file go together"))
			}
			if err := checkOutPrefix(out); err != nil {
				return err
			}
			targets := []string{out + ".pem", out + "-key.pem", out + ".p12"}
			if err := checkTargets(targets, force); err != nil {
				return err
			}
			var p12Pass, keyPass []byte
			if p12 {
				if p12Pass, err = readSecretFile(p12PasswordFile, "PKCS#12 password"); err != nil {
					return err
				}
			}
			if keyPassphraseFile != "" {
				if keyPass, err = readSecretFile(keyPassphraseFile, "key passphrase"); err != nil {
					return err
				}
			}
			ca, err := openCA(env, &f)
			if err != nil {
				return err
			}
			defer ca.Close()
			iss, err := ca.Issue(req)
			if err != nil {
				return err
			}
			keyPEM, err := iss.KeyPEM(keyPass)
			if err != nil {
				return err
			}
			files := []pki.File{
				{Path: out + ".pem", Data: iss.ChainPEM(), Perm: 0o644},
				{Path: out + "-key.pem", Data: keyPEM, Perm: 0o600},
			}
			if p12 {
				b, err := iss.PKCS12(string(p12Pass), p12Legacy)
				if err != nil {
					return err
				}
				files = append(files, pki.File{Path: out + ".p12", Data: b, Perm: 0o600})
			}
			if err := pki.WriteFiles(files...); err != nil {
				return fmt.Errorf("%w (certificate %s is recorded; revoke it with 'gatehouse ca revoke --serial %s')", err, showSerial(iss.Record.Serial), showSerial(iss.Record.Serial))
			}
			if !p12 {
				// --force: a keystore of the old key must not stay
				// beside the new one.
				if err := os.Remove(out + ".p12"); err == nil {
					fmt.Fprintf(env.Stderr, "gatehouse: removed %s, which held the replaced key\n", out+".p12")
				}
			}
			if keyPass == nil {
				fmt.Fprintf(env.Stderr, "gatehouse: warning: %s is not encrypted (mode 0600); use --key-passphrase-file to encrypt it\n", out+"-key.pem")
			}
			printIssued(env, iss, files)
			return nil
		}),
	}
	f.register(cmd, true)
	fl := cmd.Flags()
	subjectFlags(cmd, &profile, &cn, &dns, &ips, &uris, &emails)
	fl.StringVar(&validity, "validity", "", "validity, like 90d, 1y, 12h (default 90d, at most the CA's maximum)")
	fl.StringVar(&out, "out", "", "output prefix: writes PREFIX.pem, PREFIX-key.pem (and PREFIX.p12) (required)")
	fl.BoolVar(&p12, "p12", false, "also write PREFIX.p12 (needs --p12-password-file)")
	fl.StringVar(&p12PasswordFile, "p12-password-file", "", "read the PKCS#12 password from this file (one line)")
	fl.BoolVar(&p12Legacy, "p12-legacy", false, "encrypt PREFIX.p12 with legacy 3DES/SHA-1 for old keystores (Java < 12, Windows < 2019)")
	fl.StringVar(&keyPassphraseFile, "key-passphrase-file", "", "encrypt PREFIX-key.pem with the passphrase in this file (one line)")
	fl.StringVar(&keyType, "key-type", string(pki.KeyECDSAP256), "key type: "+oneOf(keyTypeNames()...))
	fl.BoolVar(&force, "force", false, "overwrite existing PREFIX.pem, PREFIX-key.pem and PREFIX.p12")
	for _, name := range []string{"profile", "cn", "out"} {
		cmd.MarkFlagRequired(name)
	}
	return cmd
}

// subjectFlags registers the flags that name a certificate's profile,
// subject and alternative names, for 'ca issue' and 'ca token'.
func subjectFlags(cmd *cobra.Command, profile, cn *string, dns, ips, uris, emails *[]string) {
	fl := cmd.Flags()
	fl.StringVar(profile, "profile", "", "certificate profile: server|client (required)")
	fl.StringVar(cn, "cn", "", "subject common name (required)")
	fl.StringArrayVar(dns, "dns", nil, "DNS subject alternative name (repeatable)")
	fl.StringArrayVar(ips, "ip", nil, "IP address subject alternative name (repeatable)")
	fl.StringArrayVar(uris, "uri", nil, "URI subject alternative name, like spiffe://example.com/svc (repeatable)")
	fl.StringArrayVar(emails, "email", nil, "email subject alternative name (repeatable)")
}

func issueRequest(profile, cn, validity, keyType string, dns, ips, uris, emails []string) (pki.IssueRequest, error) {
	p, err := pki.ParseProfile(profile)
	if err != nil {
		return pki.IssueRequest{}, usageError(err)
	}
	kt, err := pki.ParseKeyType(keyType)
	if err != nil {
		return pki.IssueRequest{}, usageError(err)
	}
	v, err := parseDurationFlag("validity", validity)
	if err != nil {
		return pki.IssueRequest{}, err
	}
	req := pki.IssueRequest{Profile: p, CN: cn, DNS: dns, Emails: emails, Validity: v, KeyType: kt}
	req.IPs, req.URIs, err = parseSANFlags(ips, uris)
	return req, err
}

// parseSANFlags parses --ip and --uri values.
func parseSANFlags(ips, uris []string) ([]net.IP, []*url.URL, error) {
	var outIPs []net.IP
	var outURIs []*url.URL
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, nil, usageError(fmt.Errorf("--ip %q: not an IP address", s))
		}
		outIPs = append(outIPs, ip)
	}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" {
			return nil, nil, usageError(fmt.Errorf("--uri %q: not an absolute URI like spiffe://example.com/svc", s))
		}
		outURIs = append(outURIs, u)
	}
	return outIPs, outURIs, nil
}

// checkTargets refuses to overwrite existing files unless force is set:
// a server prefix given twice would replace the key a running gateway
// watches.
func checkTargets(paths []string, force bool) error {
	if force {
		return nil
	}
	var exist []string
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			exist = append(exist, p)
		}
	}
	if len(exist) > 0 {
		return usageError(fmt.Errorf("%s already exists; not overwriting (use --force to replace, or another --out)", strings.Join(exist, ", ")))
	}
	return nil
}

// checkOutPrefix checks that an output prefix names files in an existing
// directory, so that a typo fails before anything is issued.
func checkOutPrefix(out string) error {
	if out == "" || strings.HasSuffix(out, string(filepath.Separator)) {
		return usageError(fmt.Errorf("--out %q: give a file prefix like pki/api", out))
	}
	dir := filepath.Dir(out)
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return usageError(fmt.Errorf("--out %q: directory %s does not exist", out, dir))
	}
	if err != nil {
		return fmt.Errorf("--out %q: %w", out, err)
	}
	if !fi.IsDir() {
		return usageError(fmt.Errorf("--out %q: %s is not a directory", out, dir))
	}
	return nil
}

// openCA opens the CA with the passphrase from the flags or environment.
func openCA(env *Env, f *caFlags) (*pki.CA, error) {
	// Fail fast on a directory that is not a CA, before asking for a
	// passphrase.
	pub, err := pki.OpenPublic(f.dir)
	if err != nil {
		return nil, err
	}
	pub.Close()
	if pub.Settings().InToken() {
		return pki.Open(f.dir, nil) // the token's PIN file, not a passphrase
	}
	pass, err := f.passphrase(env, false)
	if err != nil {
		return nil, err
	}
	return pki.Open(f.dir, pass)
}

func printIssued(env *Env, iss *pki.Issued, files []pki.File) {
	c := iss.Cert()
	fmt.Fprintf(env.Stdout, "issued %s certificate %q, serial %s, valid until %s\n",
		iss.Record.Profile, c.Subject.CommonName, serial.Format(c.SerialNumber), c.NotAfter.UTC().Format(time.RFC3339))
	for _, f := range files {
		fmt.Fprintf(env.Stdout, "  wrote %s\n", f.Path)
	}
}

func newCASignCmd(env *Env) *cobra.Command {
	var (
		f                               caFlags
		csrFile, profile, validity, out string
		dns, ips, uris, emails          []string
		force                           bool
	)
	cmd := &cobra.Command{
		Use:   "sign --dir DIR --csr FILE --profile server|client [--dns N]... [--ip A]... [--uri U]... [--email E]... [--validity D] --out FILE",
		Short: "Sign a certificate signing request",
		Long: `Sign a CSR (PEM or DER, as made by 'openssl req -new') after checking its
signature. The subject comes from the CSR; usages, validity and revocation
pointers from the profile and the CA. The subject alternative names come
from the CSR, unless --dns, --ip, --uri or --email are given: then those,
and only those, are the certificate's names (the CSR's are replaced), so a
CSR made without -addext subjectAltName can still be signed. A CSR that asks
for CA:TRUE or an extended key usage the profile does not have is refused,
as is a name outside the CA's name constraints. Writes FILE with the
certificate followed by the intermediates; an existing FILE is not
overwritten unless --force is given.`,
		Example: `  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout api-key.pem -out api.csr -subj /CN=api.example.com \
      -addext subjectAltName=DNS:api.example.com
  gatehouse ca sign --dir pki --csr api.csr --profile server --out api.pem
  gatehouse ca sign --dir pki --csr web.csr --profile server --dns web.example.com --out web.pem`,
		Args: cobra.NoArgs,
		RunE: caRunE(func() error {
			p, err := pki.ParseProfile(profile)
			if err != nil {
				return usageError(err)
			}
			v, err := parseDurationFlag("validity", validity)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(csrFile)
			if err != nil {
				return fmt.Errorf("read CSR: %w", err)
			}
			csr, err := pki.ParseCSR(b)
			if err != nil {
				return fmt.Errorf("read CSR %s: %w", csrFile, err)
			}
			if err := checkOutPrefix(out); err != nil {
				return err
			}
			if err := checkTargets([]string{out}, force); err != nil {
				return err
			}
			sr := pki.SignRequest{Profile: p, Validity: v, DNS: dns, Emails: emails}
			if sr.IPs, sr.URIs, err = parseSANFlags(ips, uris); err != nil {
				return err
			}
			ca, err := openCA(env, &f)
			if err != nil {
				return err
			}
			defer ca.Close()
			iss, err := ca.Sign(csr, sr)
			if err != nil {
				return err
			}
			files := []pki.File{{Path: out, Data: iss.ChainPEM(), Perm: 0o644}}
			if err := pki.WriteFiles(files...); err != nil {
				return err
			}
			printIssued(env, iss, files)
			return nil
		}),
	}
	f.register(cmd, true)
	fl := cmd.Flags()
	fl.StringVar(&csrFile, "csr", "", "the certificate signing request, PEM or DER (required)")
	fl.StringVar(&profile, "profile", "", "certificate profile: server|client (required)")
	fl.StringVar(&validity, "validity", "", "validity, like 90d, 1y (default 90d, at most the CA's maximum)")
	fl.StringVar(&out, "out", "", "write the certificate chain (PEM) to this file (required)")
	fl.StringArrayVar(&dns, "dns", nil, "DNS subject alternative name; replaces the CSR's names (repeatable)")
	fl.StringArrayVar(&ips, "ip", nil, "IP address subject alternative name; replaces the CSR's names (repeatable)")
	fl.StringArrayVar(&uris, "uri", nil, "URI subject alternative name; replaces the CSR's names (repeatable)")
	fl.StringArrayVar(&emails, "email", nil, "email subject alternative name; replaces the CSR's names (repeatable)")
	fl.BoolVar(&force, "force", false, "overwrite an existing FILE")
	for _, name := range []string{"csr", "profile", "out"} {
		cmd.MarkFlagRequired(name)
	}
	return cmd
}
