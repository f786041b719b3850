package cli

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/keystore"
	"github.com/gatehouse/gatehouse/internal/pki"
	"github.com/gatehouse/gatehouse/internal/units"
)

func newCAInitCmd(env *Env) *cobra.Command {
	var (
		f                              caFlags
		name, keyType, url, maxValidty string
		keyStore, storeURL             string
		intermediate                   bool
		nc                             pki.NameConstraints
		pf                             profileFlags
	)
	cmd := &cobra.Command{
		Use:   "init --dir DIR [--name CN] [--key-type TYPE] [--intermediate] [--passphrase-file F]",
		Short: "Create a certificate authority in DIR",
		Long: `Create a CA in DIR: a root certificate valid 10 years (DIR/ca.pem, the trust
anchor you distribute) and, with --intermediate, an intermediate valid 5 years
that signs everything (DIR/intermediate.pem), so the root key is needed only
to create intermediates. The keys are encrypted with the CA passphrase
(PKCS#8, PBES2, AES-256-CBC, scrypt) and readable by 'openssl pkey -passin'.
With --key-store pkcs11:..., the keys are generated inside an HSM instead and
never leave it; DIR then holds only certificates and the keys' URIs.
With --store postgres://..., the inventory lives in PostgreSQL, so that
several 'ca serve' replicas can share it.

With --url, every certificate issued carries <URL>/crl as CRL Distribution
Point and <URL>/ocsp as OCSP responder: the address where 'gatehouse ca
serve' will be reachable. The --permit-*/--exclude-* flags write name
constraints into the CA certificates and refuse other names at issuance.`,
		Example: `  gatehouse ca init --dir pki --name "Example Corp CA" --intermediate \
      --url http://ca.example.com:8089 --passphrase-file ca-pass.txt`,
		Args: cobra.NoArgs,
		RunE: caRunE(func() error {
			kt, err := pki.ParseKeyType(keyType)
			if err != nil {
				return usageError(err)
			}
			maxV, err := parseDurationFlag("max-validity", maxValidty)
			if err != nil {
				return err
			}
			profiles, err := pf.limits()
			if err != nil {
				return err
			}
			var pass []byte
			if keyStore == "" {
				if pass, err = f.passphrase(env, true); err != nil {
					return err
				}
				if len(pass) < minPassphrase {
					return usageError(fmt.Errorf("init CA: the passphrase is too short (use at least %d characters)", minPassphrase))
				}
			} else if !keystore.IsPKCS11(keyStore) {
				return usageError(fmt.Errorf("--key-store: want a PKCS#11 URI like pkcs11:token=gatehouse?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/gatehouse/pin"))
			}
			ca, err := pki.Init(f.dir, pki.InitOptions{
				Name: name, KeyType: kt, Intermediate: intermediate, Passphrase: pass,
				URL: url, MaxValidity: maxV, NameConstraints: &nc, Profiles: profiles,
				KeyStore: keyStore, Store: storeURL,
			})
			if err != nil {
				return err
			}
			defer ca.Close()
			sum := sha256.Sum256(ca.Root().Raw)
			w := env.Stdout
			fmt.Fprintf(w, "created CA %q (%s) in %s\n", ca.Root().Subject.CommonName, kt, f.dir)
			fmt.Fprintf(w, "  root certificate (distribute as trust anchor): %s\n", filepath.Join(f.dir, pki.RootCertFile))
			fmt.Fprintf(w, "  root SHA-256 fingerprint: %X\n", sum)
			if intermediate {
				fmt.Fprintf(w, "  intermediate (signs certificates):             %s\n", filepath.Join(f.dir, pki.IntermediateCertFile))
			}
			if k := ca.Settings().Keys; k != nil {
				fmt.Fprintf(w, "  keys generated in the token, never outside it: %s\n", k.Root)
				if k.Intermediate != "" {
					fmt.Fprintf(w, "                                                 %s\n", k.Intermediate)
				}
			}
			if s := ca.Settings().Store; s != "" {
				fmt.Fprintf(w, "  inventory: PostgreSQL %s\n", s)
			}
			fmt.Fprintf(w, "  CRL: %s\n", filepath.Join(f.dir, pki.CRLFile))
			if s := ca.Settings(); s.URL != "" {
				fmt.Fprintf(w, "  certificates will point to %s and %s: run 'gatehouse ca serve' there\n", s.CRLURL(), s.OCSPURL())
			}
			return nil
		}),
	}
	f.register(cmd, true)
	pf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&name, "name", pki.DefaultName, "common name of the root certificate")
	fl.StringVar(&keyType, "key-type", string(pki.KeyECDSAP256), "key type: "+oneOf(keyTypeNames()...))
	fl.BoolVar(&intermediate, "intermediate", false, "create an intermediate CA that signs certificates, keeping the root key offline")
	fl.StringVar(&keyStore, "key-store", "", "generate the CA keys inside this PKCS#11 token (RFC 7512 URI; object= is the label prefix, default "+pki.DefaultKeyLabel+"; binaries built with -tags pkcs11)")
	fl.StringVar(&storeURL, "store", "", "keep the inventory in this PostgreSQL database (postgres://user@host/db, empty; password in ~/.pgpass or PGPASSFILE) instead of DIR/"+pki.InventoryFile)
	fl.StringVar(&url, "url", "", "public base URL of 'gatehouse ca serve', written into certificates as <URL>/crl and <URL>/ocsp")
	fl.StringVar(&maxValidty, "max-validity", units.FormatDuration(pki.DefaultMaxValidity), "longest validity this CA issues (like 90d, 1y)")
	fl.StringSliceVar(&nc.PermittedDNS, "permit-dns", nil, "name constraint: only DNS names in this domain (repeatable)")
	fl.StringSliceVar(&nc.ExcludedDNS, "exclude-dns", nil, "name constraint: no DNS names in this domain (repeatable)")
	fl.StringSliceVar(&nc.PermittedIPs, "permit-ip", nil, "name constraint: only IP addresses in this CIDR range (repeatable)")
	fl.StringSliceVar(&nc.ExcludedIPs, "exclude-ip", nil, "name constraint: no IP addresses in this CIDR range (repeatable)")
	fl.StringSliceVar(&nc.PermittedEmails, "permit-email", nil, "name constraint: only these email addresses, hosts or .domains (repeatable)")
	fl.StringSliceVar(&nc.PermittedURIDomains, "permit-uri-domain", nil, "name constraint: only URIs with this host (.domain for subdomains; repeatable)")
	return cmd
}

func keyTypeNames() []string {
	var s []string
	for _, k := range pki.KeyTypes() {
		s = append(s, string(k))
	}
	return s
}
