package cli

import (
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/certsource"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/units"
)

// shortLivedWarnings warns about each served certificate that lives
// shorter than the CRL refresh interval: a revocation may then take longer
// to reach the gateway than the certificate lives, so the CRL adds nothing
// and expiry is the real revocation. It is advice; the configuration is
// valid.
func shortLivedWarnings(f *config.File) []string {
	var out []string
	rev := f.Config.ClientAuth.Revocation
	if len(rev.CRL) == 0 {
		return nil
	}
	refresh := time.Duration(rev.Refresh)
	for i, ck := range f.Config.ServerTLS.Certificates {
		certs, err := certsource.LoadCerts(f.Resolve(ck.Cert))
		if err != nil || len(certs) == 0 {
			continue
		}
		life := certs[0].NotAfter.Sub(certs[0].NotBefore)
		if life < refresh {
			field := fmt.Sprintf("server_tls.certificates[%d].cert", i)
			out = append(out, fmt.Sprintf("%s:%d: %s: the certificate lives %s, shorter than client_auth.revocation.refresh (%s): "+
				"a revocation can take longer to arrive than the certificate lives (lower refresh, or rely on expiry)",
				f.Path, f.Line(field), field, units.FormatDuration(life.Round(time.Second)), units.FormatDuration(refresh)))
		}
	}
	return out
}
