package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/pki/enroll"
	"github.com/gatehouse/gatehouse/internal/units"
)

func newCATokenCmd(env *Env) *cobra.Command {
	var (
		f                       caFlags
		profile, cn, ttl, valid string
		dns, ips, uris, emails  []string
	)
	cmd := &cobra.Command{
		Use:   "token --dir DIR --profile client|server --cn NAME [--dns N]... [--uri U]... [--ttl 15m]",
		Short: "Mint a one-time enrollment token for 'gatehouse cert request'",
		Long: `Print a one-time token that lets its holder get one certificate with exactly
the names given here from 'gatehouse ca serve --tls-listen', with
'gatehouse cert request' or EST simpleenroll. The token is a JWT signed by the
CA's key; it expires after --ttl (default 15m, at most 7d) and is spent on
first use (the inventory remembers, across restarts). Hand it over like a
password: whoever holds it gets the certificate.`,
		Example: `  gatehouse ca token --dir pki --profile client --cn partner-a --uri spiffe://example.com/partner-a
  gatehouse cert request --ca-url https://ca.example.com:8443 --root ca.pem --token "$TOKEN" --out partner-a`,
		Args: cobra.NoArgs,
		RunE: caRunE(func() error {
			req, err := issueRequest(profile, cn, valid, "", dns, ips, uris, emails)
			if err != nil {
				return err
			}
			d, err := parseDurationFlag("ttl", ttl)
			if err != nil {
				return err
			}
			ca, err := openCA(env, &f)
			if err != nil {
				return err
			}
			defer ca.Close()
			tok, claims, err := enroll.MintToken(ca, enroll.TokenRequest{
				Profile: req.Profile, CN: req.CN, DNS: req.DNS, IPs: req.IPs, URIs: req.URIs, Emails: req.Emails,
				TTL: d, Validity: req.Validity,
			}, time.Now())
			if err != nil {
				return usageError(err)
			}
			fmt.Fprintln(env.Stdout, tok)
			fmt.Fprintf(env.Stderr, "gatehouse: token %s for %s certificate %q, single use, expires %s\n",
				claims.ID, claims.Profile, claims.Subject, claims.Expiry.Time().UTC().Format(time.RFC3339))
			return nil
		}),
	}
	f.register(cmd, true)
	fl := cmd.Flags()
	subjectFlags(cmd, &profile, &cn, &dns, &ips, &uris, &emails)
	fl.StringVar(&ttl, "ttl", units.FormatDuration(enroll.DefaultTokenTTL), "how long the token can be used (at most 7d)")
	fl.StringVar(&valid, "validity", "", "validity of the certificate (default: the profile's default)")
	for _, name := range []string{"profile", "cn"} {
		cmd.MarkFlagRequired(name)
	}
	return cmd
}
