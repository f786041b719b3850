package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/pki"
	"github.com/gatehouse/gatehouse/internal/pki/store"
	"github.com/gatehouse/gatehouse/internal/serial"
)

// listEntry is one certificate in `ca list --json`.
type listEntry struct {
	Serial    string     `json:"serial"`
	Subject   string     `json:"subject"`
	SANs      []string   `json:"sans"`
	Profile   string     `json:"profile"`
	NotBefore time.Time  `json:"not_before"`
	NotAfter  time.Time  `json:"not_after"`
	Status    string     `json:"status"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	Reason    string     `json:"reason,omitempty"`
}

func newCAListCmd(env *Env) *cobra.Command {
	var (
		f        caFlags
		expiring string
		revoked  bool
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "list --dir DIR [--expiring-within DURATION] [--revoked] [--json]",
		Short: "List the issued certificates",
		Long: `List every certificate the CA issued, soonest expiry first, as a table or as
JSON. Serials are printed as 'openssl x509 -serial' prints them.
--expiring-within 30d shows the certificates that are not revoked and whose
validity ends before 30 days from now: those that will expire in that time
and those that already have. --revoked shows only revoked ones (with
--expiring-within: revoked ones that expire in that time). Needs no
passphrase.`,
		Example: `  gatehouse ca list --dir pki --expiring-within 30d
  gatehouse ca list --dir pki --revoked --json`,
		Args: cobra.NoArgs,
		RunE: caRunE(func() error {
			within, err := parseDurationFlag("expiring-within", expiring)
			if err != nil {
				return err
			}
			ca, err := pki.OpenPublic(f.dir)
			if err != nil {
				return err
			}
			defer ca.Close()
			filter := store.Filter{Revoked: revoked}
			if expiring != "" {
				filter.NotAfterBefore = time.Now().Add(within)
			}
			recs, err := ca.Store().List(env.ctx(), filter)
			if err != nil {
				return err
			}
			entries := make([]listEntry, 0, len(recs))
			for _, r := range recs {
				if expiring != "" && r.Profile == pki.ProfileOCSPSigner {
					continue // ca serve renews these itself, every day
				}
				e := listEntry{Serial: showSerial(r.Serial), Subject: r.Subject, SANs: r.SANs, Profile: r.Profile,
					NotBefore: r.NotBefore, NotAfter: r.NotAfter, Status: string(r.Status)}
				if e.SANs == nil {
					e.SANs = []string{}
				}
				if r.Status == store.StatusRevoked {
					t := r.RevokedAt
					e.RevokedAt, e.Reason = &t, pki.Reason(r.Reason).String()
				}
				entries = append(entries, e)
			}
			if asJSON {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(entries)
			}
			if len(entries) == 0 {
				fmt.Fprintln(env.Stdout, "no certificates")
				return nil
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SERIAL\tPROFILE\tSUBJECT\tNOT AFTER\tSTATUS\tSANS")
			for _, e := range entries {
				status := e.Status
				if e.RevokedAt != nil {
					status += " (" + e.Reason + ")"
				} else if e.NotAfter.Before(time.Now()) {
					status = "expired"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Serial, e.Profile, sanitizeCell(e.Subject),
					e.NotAfter.Format(time.DateOnly), status, sanitizeCell(strings.Join(e.SANs, ",")))
			}
			return tw.Flush()
		}),
	}
	f.register(cmd, false)
	cmd.Flags().StringVar(&expiring, "expiring-within", "", "only certificates not revoked whose validity ends within this duration (like 30d), already expired ones included")
	cmd.Flags().BoolVar(&revoked, "revoked", false, "only revoked certificates")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}

// showSerial prints a serial as the inventory holds it in openssl's form.
func showSerial(stored string) string {
	n, err := store.ParseSerial(stored)
	if err != nil {
		return stored
	}
	return serial.Format(n)
}

// sanitizeCell keeps control characters from a certificate out of the
// terminal.
func sanitizeCell(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
