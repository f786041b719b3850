package pki

import (
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse/internal/units"
)

// ProfileLimits bounds the validity of one profile's certificates, so that
// short lifetimes are the default (clients 24h, servers 7d) rather than
// something every request must remember to ask for.
type ProfileLimits struct {
	// DefaultValidity is used when a request names none. If zero, the
	// CA's default (DefaultLeafValidity, bounded by the maximum).
	DefaultValidity Duration `json:"default_validity,omitempty"`
	// MaxValidity bounds requests for this profile. If zero, the CA's
	// MaxValidity. It can only be lower than the CA's maximum.
	MaxValidity Duration `json:"max_validity,omitempty"`
}

// checkProfileLimits refuses profile limits that name an unknown profile
// or exceed the CA's maximum.
func checkProfileLimits(s Settings) error {
	for p, l := range s.Profiles {
		if _, err := ParseProfile(string(p)); err != nil {
			return err
		}
		if l.DefaultValidity < 0 || l.MaxValidity < 0 {
			return fmt.Errorf("profile %s: validities must be positive", p)
		}
		if l.MaxValidity > s.MaxValidity {
			return fmt.Errorf("profile %s: maximum validity %s exceeds the CA's maximum of %s",
				p, units.FormatDuration(time.Duration(l.MaxValidity)), units.FormatDuration(time.Duration(s.MaxValidity)))
		}
		max := cmp(l.MaxValidity, s.MaxValidity)
		if l.DefaultValidity > max {
			return fmt.Errorf("profile %s: default validity %s exceeds its maximum of %s",
				p, units.FormatDuration(time.Duration(l.DefaultValidity)), units.FormatDuration(time.Duration(max)))
		}
	}
	return nil
}

// ProfileValidity returns the default and the maximum validity of p's
// certificates under this CA's settings.
func (ca *CA) ProfileValidity(p Profile) (def, max time.Duration) {
	max = time.Duration(ca.settings.MaxValidity)
	l := ca.settings.Profiles[p]
	if l.MaxValidity > 0 {
		max = min(max, time.Duration(l.MaxValidity))
	}
	def = min(DefaultLeafValidity, max)
	if l.DefaultValidity > 0 {
		def = min(time.Duration(l.DefaultValidity), max)
	}
	return def, max
}

// validityFor resolves a requested validity against profile p's limits,
// falling back to the CA-wide ones.
func (ca *CA) validityFor(p Profile, req time.Duration) (time.Duration, error) {
	if _, ok := ca.settings.Profiles[p]; !ok {
		return ca.validity(req)
	}
	if req < 0 {
		return 0, fmt.Errorf("validity %s is negative", units.FormatDuration(req))
	}
	def, max := ca.ProfileValidity(p)
	if req == 0 {
		req = def
	}
	if req > max {
		return 0, fmt.Errorf("validity %s exceeds the %s profile's maximum of %s", units.FormatDuration(req), p, units.FormatDuration(max))
	}
	return req, nil
}
