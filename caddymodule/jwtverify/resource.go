package jwtverify

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// CanonicalResource returns the canonical form of a resource identifier
// (RFC 8707 / RFC 9728): scheme and host are lowercased, a default port (443
// for https, 80 for http) is dropped and one trailing "/" is stripped from the
// path. It rejects values that are not absolute http(s) URLs, that carry a
// fragment or userinfo, or that are empty.
func CanonicalResource(s string) (string, error) {
	if s == "" {
		return "", errors.New("jwtverify: resource is empty")
	}
	if strings.Contains(s, "#") {
		return "", errors.New("jwtverify: resource must not contain a fragment")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", errors.New("jwtverify: resource is not a valid URL")
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "https" && scheme != "http") || u.Host == "" || u.Opaque != "" {
		return "", errors.New("jwtverify: resource must be an absolute http(s) URL")
	}
	if u.User != nil {
		return "", errors.New("jwtverify: resource must not contain userinfo")
	}
	host := strings.ToLower(u.Host)
	if h, port, err := net.SplitHostPort(host); err == nil {
		if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
			host = h
			if strings.Contains(h, ":") { // IPv6 literal
				host = "[" + h + "]"
			}
		}
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	out := scheme + "://" + host + path
	if u.RawQuery != "" || u.ForceQuery {
		out += "?" + u.RawQuery
	}
	return out, nil
}

// SameResource reports whether a and b name the same resource once both are
// put through CanonicalResource. An invalid value is never the same as
// anything.
func SameResource(a, b string) bool {
	ca, err := CanonicalResource(a)
	if err != nil {
		return false
	}
	cb, err := CanonicalResource(b)
	return err == nil && ca == cb
}
