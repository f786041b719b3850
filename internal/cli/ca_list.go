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
JSON. --expiring-within 30d shows the valid certificates that expire within
30 days (including those already expired); --revoked only revoked ones.
Needs no passphrase.`,
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
				e := listEntry{Serial: r.Serial, Subject: r.Subject, SANs: r.SANs, Profile: r.Profile,
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
	cmd.Flags().StringVar(&expiring, "expiring-within", "", "only valid certificates expiring within this duration, like 30d")
	cmd.Flags().BoolVar(&revoked, "revoked", false, "only revoked certificates")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
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
