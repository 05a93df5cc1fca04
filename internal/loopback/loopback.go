// Package loopback is the one rule, shared by the client, the IdP, the gateway's token sources and
// the backend, for whether a host names this machine.
//
// A host is loopback when it is "localhost" in any case (RFC 6761 §6.3 reserves the name and its
// case does not matter, RFC 4343) or an IP address in 127.0.0.0/8 or ::1, including an
// IPv4-mapped IPv6 spelling (::ffff:127.0.0.1) and a bracketed IPv6 literal. Subdomains of
// localhost are not loopback here: nothing guarantees that a resolver keeps them on this machine.
package loopback

import (
	"net"
	"net/netip"
	"strings"
)

// Host reports whether h, a host name or IP literal without a port (url.URL.Hostname()'s form;
// brackets around an IPv6 literal are tolerated), names this machine.
func Host(h string) bool {
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}

// HostPort is Host for a value that may carry a port, such as an HTTP Host header or a
// listener's address ("127.0.0.1:8080", "[::1]:80", "localhost").
func HostPort(hostport string) bool {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return Host(h)
	}
	return Host(hostport)
}
