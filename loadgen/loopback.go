package loadgen

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// CheckLoopbackURL refuses a URL whose host is not a loopback address
// (127.0.0.0/8, ::1 or localhost). The generator sends heavy traffic; aimed
// at a wrong host it is a denial-of-service tool, so remote targets need the
// explicit AllowRemote option (--allow-remote on the command line).
func CheckLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("bad URL %q: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("URL %q: scheme must be http or https", raw)
	}
	host := u.Hostname()
	if !IsLoopbackHost(host) {
		return fmt.Errorf("refusing to send load to %q: host %q is not a loopback address (127.0.0.0/8, ::1, localhost); pass --allow-remote (AllowRemote) if you really mean it", raw, host)
	}
	return nil
}

// IsLoopbackHost reports whether host is localhost or a loopback IP.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
