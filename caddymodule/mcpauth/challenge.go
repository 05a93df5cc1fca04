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
// cost each request a pass over the whole token (max_token_size, default
// 8 KiB) for nothing (docs/performance.md).
func bearerToken(h http.Header) (string, bearerResult) {
	values := h.Values("Authorization")
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

// challengeParams are the auth-params of one Bearer challenge (RFC 6750 §3,
// RFC 9728 §5.1). Empty fields are omitted.
type challengeParams struct {
	ResourceMetadata string
	Scope            string
	Error            string
	ErrorDescription string
}

// String renders the WWW-Authenticate value. Every value is a quoted-string
// (RFC 9110 §5.6.4) with '"' and '\' escaped; control characters and non-ASCII
// bytes, which RFC 6750 §3 forbids in these values, are dropped.
func (c challengeParams) String() string {
	var b strings.Builder
	b.Grow(len("Bearer ") + len(c.ResourceMetadata) + len(c.Scope) + len(c.Error) + len(c.ErrorDescription) + 64)
	b.WriteString("Bearer")
	first := true
	add := func(name, val string) {
		if val == "" {
			return
		}
		if first {
			b.WriteByte(' ')
			first = false
		} else {
			b.WriteString(", ")
		}
		b.WriteString(name)
		b.WriteString(`="`)
		writeQuoted(&b, val)
		b.WriteByte('"')
	}
	add("resource_metadata", c.ResourceMetadata)
	add("scope", c.Scope)
	add("error", c.Error)
	add("error_description", c.ErrorDescription)
	return b.String()
}

func writeQuoted(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			// dropped: not allowed in RFC 6750 auth-param values
		default:
			b.WriteByte(c)
		}
	}
}
