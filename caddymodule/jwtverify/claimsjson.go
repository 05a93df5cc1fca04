package jwtverify

import (
	"encoding/json"
	"strings"
)

// UnmarshalJSON decodes a JWT claims set into c. Verify calls it (via
// encoding/json, which has already checked that data is valid JSON) for
// every token that is not in the verified-token cache.
//
// The profile of a fresh RS256 verification showed encoding/json's reflective
// decode of the claims as the largest cost after the signature itself, so
// the common shape (an object whose keys are exactly ours or foreign,
// whose string members are plain ASCII) is decoded by a small scanner. Any
// input it is not certain about (escapes or non-ASCII in a key or a string
// member, a key that differs from one of ours only in case, which
// encoding/json would match, a string member holding another JSON type)
// makes it give up, and the whole object is decoded by encoding/json
// instead. The result is therefore always exactly encoding/json's, duplicate
// keys included (the last one wins); FuzzClaimsDecode checks this.
func (c *tokenClaims) UnmarshalJSON(data []byte) error {
	saved := *c
	if c.decodeFast(data) {
		return nil
	}
	*c = saved
	type plain tokenClaims // no UnmarshalJSON: encoding/json's own decoding
	return json.Unmarshal(data, (*plain)(c))
}

// claimKeys are the JSON members tokenClaims decodes.
var claimKeys = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "azp", "scope", "scp", "typ"}

// decodeFast decodes data, which must be valid JSON, if it has the common
// shape; false means "not decoded, fall back" (c may be partly written).
func (c *tokenClaims) decodeFast(d []byte) bool {
	i := skipSpace(d, 0)
	if i >= len(d) || d[i] != '{' {
		return false
	}
	i = skipSpace(d, i+1)
	if i < len(d) && d[i] == '}' {
		return true
	}
	for i < len(d) {
		if d[i] != '"' {
			return false
		}
		kend := stringEnd(d, i)
		if kend < 0 {
			return false
		}
		key := d[i+1 : kend-1]
		if !plainASCII(key) {
			return false
		}
		i = skipSpace(d, kend)
		if i >= len(d) || d[i] != ':' {
			return false
		}
		i = skipSpace(d, i+1)
		vend := valueEnd(d, i)
		if vend < 0 {
			return false
		}
		if !c.setMember(key, d[i:vend]) {
			return false
		}
		i = skipSpace(d, vend)
		if i >= len(d) {
			return false
		}
		switch d[i] {
		case ',':
			i = skipSpace(d, i+1)
		case '}':
			return true
		default:
			return false
		}
	}
	return false
}

// setMember stores one member; false means "fall back".
func (c *tokenClaims) setMember(key, val []byte) bool {
	var s *string
	var raw *json.RawMessage
	switch string(key) { // no allocation
	case "iss":
		s = &c.Iss
	case "sub":
		s = &c.Sub
	case "jti":
		s = &c.Jti
	case "client_id":
		s = &c.ClientID
	case "azp":
		s = &c.Azp
	case "aud":
		raw = &c.Aud
	case "exp":
		raw = &c.Exp
	case "nbf":
		raw = &c.Nbf
	case "iat":
		raw = &c.Iat
	case "scope":
		raw = &c.Scope
	case "scp":
		raw = &c.Scp
	case "typ":
		raw = &c.Typ
	default:
		// encoding/json matches keys case-insensitively too.
		for _, k := range claimKeys {
			if strings.EqualFold(k, string(key)) {
				return false
			}
		}
		return true
	}
	if raw != nil {
		// Like json.RawMessage.UnmarshalJSON (a copy, so the claims never
		// alias the decoder's buffer).
		*raw = append((*raw)[:0], val...)
		return true
	}
	switch {
	case string(val) == "null":
		return true // encoding/json leaves a string unchanged for null
	case len(val) >= 2 && val[0] == '"' && plainASCII(val[1:len(val)-1]):
		*s = string(val[1 : len(val)-1])
		return true
	}
	return false
}

// plainASCII reports whether b has no backslash and only ASCII bytes, so its
// JSON string content is the bytes themselves.
func plainASCII(b []byte) bool {
	for _, ch := range b {
		if ch == '\\' || ch >= 0x80 {
			return false
		}
	}
	return true
}

func skipSpace(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the closing quote of the string starting
// at d[i] == '"', or -1.
func stringEnd(d []byte, i int) int {
	for j := i + 1; j < len(d); j++ {
		switch d[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// valueEnd returns the index after the JSON value starting at d[i], or -1.
// d is valid JSON, so only strings and nesting need tracking.
func valueEnd(d []byte, i int) int {
	if i >= len(d) {
		return -1
	}
	switch d[i] {
	case '"':
		return stringEnd(d, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(d); j++ {
			switch d[j] {
			case '"':
				e := stringEnd(d, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(d) {
		switch d[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
		j++
	}
	return j
}
