package cli

import (
	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/pki"
)

// profileFlags set per-profile validity limits at 'ca init'.
type profileFlags struct {
	clientDef, clientMax, serverDef, serverMax string
}

func (f *profileFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.clientDef, "client-validity", "", "default validity of client certificates (like 24h; default 90d)")
	fl.StringVar(&f.clientMax, "client-max-validity", "", "longest validity of client certificates (default --max-validity)")
	fl.StringVar(&f.serverDef, "server-validity", "", "default validity of server certificates (like 7d; default 90d)")
	fl.StringVar(&f.serverMax, "server-max-validity", "", "longest validity of server certificates (default --max-validity)")
}

// limits returns the profile limits the flags name, nil for none.
func (f *profileFlags) limits() (map[pki.Profile]pki.ProfileLimits, error) {
	out := map[pki.Profile]pki.ProfileLimits{}
	for _, p := range []struct {
		profile            pki.Profile
		defName, maxName   string
		defValue, maxValue string
	}{
		{pki.ProfileClient, "client-validity", "client-max-validity", f.clientDef, f.clientMax},
		{pki.ProfileServer, "server-validity", "server-max-validity", f.serverDef, f.serverMax},
	} {
		def, err := parseDurationFlag(p.defName, p.defValue)
		if err != nil {
			return nil, err
		}
		max, err := parseDurationFlag(p.maxName, p.maxValue)
		if err != nil {
			return nil, err
		}
		if def != 0 || max != 0 {
			out[p.profile] = pki.ProfileLimits{DefaultValidity: pki.Duration(def), MaxValidity: pki.Duration(max)}
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}
