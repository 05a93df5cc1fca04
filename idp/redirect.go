package idp

import (
	"errors"
	"net"
	"net/url"
	"regexp"
	"strings"

	"github.com/mcpgate/mcpgate/internal/loopback"
)

var schemeRe = regexp.MustCompile(`^[a-z][a-z0-9+.\-]*$`)

// validateRedirectURI checks a redirect URI at registration: https; http only on
// a loopback host (loopback.Host: localhost in any case, 127.0.0.0/8, ::1); or a private-use scheme for native apps. Never
// javascript:, data:, vbscript:, file:, a fragment, a wildcard, userinfo, or surrounding spaces.
func validateRedirectURI(raw string) error {
	if raw == "" || raw != strings.TrimSpace(raw) {
		return errors.New("redirect URI is empty or has surrounding whitespace")
	}
	for _, c := range raw {
		if c < 0x21 || c == 0x7f || c > 0x7e {
			return errors.New("redirect URI has whitespace, control or non-ASCII characters")
		}
	}
	if strings.Contains(raw, "#") {
		return errors.New("redirect URI must not have a fragment")
	}
	if strings.Contains(raw, "*") {
		return errors.New("redirect URI must not contain wildcards")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("redirect URI does not parse")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme == "" || !schemeRe.MatchString(scheme) {
		return errors.New("redirect URI must be absolute")
	}
	if u.User != nil {
		return errors.New("redirect URI must not contain userinfo")
	}
	if u.Scheme != scheme {
		return errors.New("redirect URI scheme must be lower case")
	}
	switch scheme {
	case "javascript", "data", "vbscript", "file", "blob", "about", "filesystem", "ws", "wss":
		return errors.New("redirect URI scheme is not allowed")
	case "https":
		if u.Host == "" || u.Hostname() == "" {
			return errors.New("https redirect URI needs a host")
		}
		return nil
	case "http":
		if !loopback.Host(u.Hostname()) {
			return errors.New("http redirect URIs are allowed only on loopback hosts")
		}
		return nil
	}
	// Private-use URI scheme (RFC 8252 §7.1), e.g. com.example.app:/cb. Must not carry a host with
	// credentials (checked above); anything else is the app's business.
	if u.Opaque == "" && u.Path == "" && u.Host == "" {
		return errors.New("private-use redirect URI needs a path")
	}
	return nil
}

// matchRedirectURI reports whether requested is allowed by a registered URI: exact string match,
// except that for a registered http loopback URI any port is allowed (RFC 8252 §7.3). The host
// must still match exactly (127.0.0.1 never matches localhost or [::1]), and path and query must be
// identical.
func matchRedirectURI(registered, requested string) bool {
	if registered == requested {
		return true
	}
	ru, err := url.Parse(registered)
	if err != nil || ru.Scheme != "http" || !loopback.Host(ru.Hostname()) {
		return false
	}
	qu, err := url.Parse(requested)
	if err != nil || strings.Contains(requested, "#") {
		return false
	}
	if qu.Scheme != "http" || qu.User != nil || qu.Hostname() != ru.Hostname() {
		return false
	}
	if p := qu.Port(); p != "" {
		if _, err := net.LookupPort("tcp", p); err != nil {
			return false
		}
	}
	return qu.EscapedPath() == ru.EscapedPath() && qu.RawQuery == ru.RawQuery && qu.ForceQuery == ru.ForceQuery
}

// resolveRedirectURI picks the redirect URI for an authorization request. ok is false when no
// trusted redirect URI can be determined (the error is then shown as a page, never redirected).
func resolveRedirectURI(registered []string, requested string) (uri string, given bool, ok bool) {
	if requested == "" {
		if len(registered) == 1 {
			if u, err := url.Parse(registered[0]); err == nil && u.Scheme == "http" && loopback.Host(u.Hostname()) && u.Port() == "" {
				return "", false, false // loopback needs the actual port
			}
			return registered[0], false, true
		}
		return "", false, false
	}
	for _, r := range registered {
		if matchRedirectURI(r, requested) {
			return requested, true, true
		}
	}
	return "", false, false
}
