package jwtverify

import (
	"errors"
	"net/url"
	"strings"
)

// CanonicalResource lowercases scheme and host, strips one trailing "/", and
// rejects fragments and non-absolute URLs.
func CanonicalResource(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", errors.New("jwtverify: resource must be an absolute URL")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return "", errors.New("jwtverify: resource must not have a fragment")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	out := u.String()
	return strings.TrimSuffix(out, "/"), nil
}

// SameResource reports whether a and b name the same resource after
// CanonicalResource. Invalid values are never the same.
func SameResource(a, b string) bool {
	ca, err := CanonicalResource(a)
	if err != nil {
		return false
	}
	cb, err := CanonicalResource(b)
	return err == nil && ca == cb
}
