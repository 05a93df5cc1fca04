package mcpauth

import (
	"net/http"
	"strings"
)

// bearerResult classifies what the Authorization header carried.
type bearerResult int

const (
	// bearerMissing: no Authorization header, or one with another scheme
	// (RFC 6750 §3.1: no authentication information, so no error code).
	bearerMissing bearerResult = iota
	// bearerPresent: exactly one "Bearer <credentials>" value with
	// non-empty credentials (not yet checked against the b64token grammar:
	// see bearerToken).
	bearerPresent
	// bearerMalformed: "Bearer" with an empty value.
	bearerMalformed
	// bearerDuplicate: more than one Authorization header (RFC 6750 §3.1
	// invalid_request: "uses more than one method ... for authenticating").
	bearerDuplicate
)

// bearerToken extracts the bearer token from the Authorization header only
// (RFC 6750 §2.1). Tokens in the query string or the form body (§2.2, §2.3)
// are never looked at. The scheme is matched case-insensitively. The token is
// returned only for bearerPresent.
//
// The token is not checked against RFC 6750's b64token grammar here: the
// handler does that with isB64Token only when verification fails, to answer
// "malformed". A token that verifies is base64url segments joined by dots,
// which b64token allows (jwtverify refuses the CR and LF that Go's base64
// decoder would skip), so checking every byte of every verified token again
// would cost each request a pass over the whole token for nothing.
func bearerToken(h http.Header) (string, bearerResult) {
	// The canonical name indexes the map directly, as Header.Values would
	// after canonicalising it on every request.
	values := h["Authorization"]
	switch len(values) {
	case 0:
		return "", bearerMissing
	case 1:
	default:
		return "", bearerDuplicate
	}
	v := values[0]
	const scheme = "bearer"
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", bearerMissing
	}
	rest := v[len(scheme):]
	if rest == "" {
		return "", bearerMalformed
	}
	if rest[0] != ' ' && rest[0] != '\t' {
		// "Bearerx..." is another scheme, not ours.
		return "", bearerMissing
	}
	tok := strings.Trim(rest, " \t")
	if tok == "" {
		return "", bearerMalformed
	}
	return tok, bearerPresent
}

// b64tokenChars marks the bytes allowed before the padding of a b64token.
var b64tokenChars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~+/" {
		t[c] = true
	}
	return t
}()

// isB64Token reports whether s matches RFC 6750's
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	i := 0
	for i < len(s) && b64tokenChars[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}
