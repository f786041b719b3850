package config

import "net/url"

// Renew names the enrollment API a certificate renews itself from
// (`gatehouse ca serve --tls-listen`), authenticated by the certificate
// itself.
type Renew struct {
	// CAURL is the API's https base URL. Required.
	CAURL string `yaml:"ca_url"`
	// Root is the CA's root certificate (PEM), the only trust anchor for
	// the API. Required.
	Root string `yaml:"root"`
}

func (r *Renew) validate(ps *problems, f string) {
	if r == nil {
		return
	}
	if u, err := url.Parse(r.CAURL); err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		ps.add(f+".ca_url", "%q is not the enrollment API's https base URL (like https://ca.example.com:8443)", r.CAURL)
	}
	if r.Root == "" {
		ps.add(f+".root", "required: the CA's root certificate (ca.pem), the trust anchor for ca_url")
	}
}
