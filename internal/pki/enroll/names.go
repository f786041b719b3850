package enroll

import (
	"net"
	"net/url"
	"slices"
	"strings"
)

// sanSet is a sorted list of typed names ("dns:x", "ip:x", ...), so that
// two name lists compare without caring about order or DNS case.
func sanSet(dns []string, ips []net.IP, uris []*url.URL, emails []string) []string {
	var out []string
	for _, d := range dns {
		out = append(out, "dns:"+strings.ToLower(d))
	}
	for _, ip := range ips {
		out = append(out, "ip:"+ip.String())
	}
	for _, u := range uris {
		out = append(out, "uri:"+u.String())
	}
	for _, e := range emails {
		out = append(out, "email:"+e)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
