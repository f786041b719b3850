package cli

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/keystore"
	"github.com/gatehouse/gatehouse/internal/pki"
)

func newCACSRCmd(env *Env) *cobra.Command {
	var (
		keyStore, cn, keyType, out string
		dns, ips                   []string
	)
	cmd := &cobra.Command{
		Use:   "csr --key-store pkcs11:...;object=LABEL --cn NAME [--dns N]... [--ip A]... --out FILE",
		Short: "Generate a key inside a PKCS#11 token and write a CSR for it",
		Long: `Generate a key pair inside the PKCS#11 token the URI names, labelled by its
object= (sensitive, not extractable: it never leaves the token), and write a
certificate signing request for it, signed in the token. Sign the CSR with
'gatehouse ca sign', then name the key in the gateway's configuration by the
same URI: key: "pkcs11:...". Binaries built with -tags pkcs11.`,
		Example: `  gatehouse ca csr --key-store 'pkcs11:token=gatehouse;object=api?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/gatehouse/pin' \
      --cn api.example.com --dns api.example.com --out api.csr
  gatehouse ca sign --dir pki --csr api.csr --profile server --out api.pem`,
		Args: cobra.NoArgs,
		RunE: caRunE(func() error {
			u, err := keystore.ParsePKCS11URI(keyStore)
			if err != nil {
				return usageError(fmt.Errorf("--key-store: %w", err))
			}
			kt, err := pki.ParseKeyType(keyType)
			if err != nil {
				return usageError(err)
			}
			tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, DNSNames: dns}
			for _, s := range ips {
				ip := net.ParseIP(s)
				if ip == nil {
					return usageError(fmt.Errorf("--ip %q: not an IP address", s))
				}
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
			key, err := keystore.GeneratePKCS11(u, string(kt))
			if err != nil {
				return err
			}
			defer key.Close()
			der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
			if err != nil {
				return fmt.Errorf("create CSR: %w", err)
			}
			if err := pki.WriteFiles(pki.File{Path: out, Data: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), Perm: 0o644}); err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "generated a %s key in the token, labelled %q; wrote the CSR to %s\n", kt, u.Object, out)
			fmt.Fprintf(env.Stdout, "  key reference for the configuration: %s\n", u.String())
			return nil
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&keyStore, "key-store", "", "PKCS#11 URI of the key to create, with object=LABEL (required)")
	fl.StringVar(&cn, "cn", "", "subject common name (required)")
	fl.StringSliceVar(&dns, "dns", nil, "DNS subject alternative name (repeatable)")
	fl.StringSliceVar(&ips, "ip", nil, "IP subject alternative name (repeatable)")
	fl.StringVar(&keyType, "key-type", string(pki.KeyECDSAP256), "key type: ecdsa-p256|ecdsa-p384|rsa-3072")
	fl.StringVar(&out, "out", "", "write the CSR (PEM) to this file (required)")
	for _, f := range []string{"key-store", "cn", "out"} {
		cmd.MarkFlagRequired(f)
	}
	return cmd
}
