package jwtverify

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims is a verified access token's identity. Returned values are shared
// (cached): treat them as read-only.
type Claims struct {
	Issuer   string
	Subject  string
	Audience []string
	ClientID string // "client_id", else "azp"
	Scope    string // space-separated; from "scope" (string) or "scp" (array of strings)
	Scopes   []string
	// HasScopeClaim is true when the token carries a "scope" or "scp"
	// claim (not null), even an empty one; false when it has neither, as
	// tokens of some providers (zitadel's OP, some Keycloak setups) do.
	// It lets a caller say "token has no scope claim" rather than just
	// "insufficient scope".
	HasScopeClaim bool
	Expiry        time.Time
	IssuedAt      time.Time // zero if absent
	NotBefore     time.Time // zero if absent
	ID            string    // jti

	// identity holds Subject, Scope, ClientID and Issuer as interface
	// values, made once by Verify; see Identity.
	identity [4]any
}

// Identity returns Subject, Scope, ClientID and Issuer as interface values.
// For Claims from Verify they were made once, when the token was verified,
// so handing them to an API that takes any (Caddy's Replacer.Set) costs a
// cached request no allocation, where converting the four strings each time
// cost four. For Claims built otherwise they are made on each call.
func (c *Claims) Identity() (sub, scope, clientID, iss any) {
	if c.identity[0] == nil {
		return c.Subject, c.Scope, c.ClientID, c.Issuer
	}
	return c.identity[0], c.identity[1], c.identity[2], c.identity[3]
}

// MissingScopes returns the entries of required that are not among c.Scopes,
// in the order given, or nil when all are present. Comparison is exact
// (case-sensitive, RFC 6749 §3.3).
func (c *Claims) MissingScopes(required []string) []string {
	var missing []string
	for _, r := range required {
		if !slices.Contains(c.Scopes, r) {
			missing = append(missing, r)
		}
	}
	return missing
}

// maxNumericDate bounds exp/nbf/iat (year 9999) so conversions cannot
// overflow.
const maxNumericDate = 253402300799

// tokenClaims is the JSON payload of a token. Members whose
// JSON type we must check strictly are kept raw: golang-jwt's NumericDate
// would accept exp as a JSON string ("exp":"123"), and its ClaimStrings
// reports a numeric aud only as a generic decode error.
type tokenClaims struct {
	Iss      string          `json:"iss"`
	Sub      string          `json:"sub"`
	Aud      json.RawMessage `json:"aud"`
	Exp      json.RawMessage `json:"exp"`
	Nbf      json.RawMessage `json:"nbf"`
	Iat      json.RawMessage `json:"iat"`
	Jti      string          `json:"jti"`
	ClientID string          `json:"client_id"`
	Azp      string          `json:"azp"`
	Scope    json.RawMessage `json:"scope"`
	Scp      json.RawMessage `json:"scp"`
	Typ      json.RawMessage `json:"typ"`

	// Filled by check.
	aud           jwt.ClaimStrings
	scopes        []string
	exp, nbf, iat *jwt.NumericDate
}

// numericDate parses a NumericDate (RFC 7519 §2): a JSON number of seconds,
// never a string. present is false when the member is absent or null.
func numericDate(raw json.RawMessage) (d *jwt.NumericDate, present bool, ok bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, false, true
	}
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		return nil, true, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return nil, true, false
	}
	sec, frac := math.Modf(f)
	return &jwt.NumericDate{Time: time.Unix(int64(sec), int64(frac*1e9))}, true, true
}

// present reports whether a raw claim member is there and not null.
func present(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

// audience parses "aud": a string or an array of strings (RFC 7519 §4.1.3).
func audience(raw json.RawMessage) (jwt.ClaimStrings, bool) {
	if len(raw) == 0 {
		return nil, false
	}
	switch raw[0] {
	case '"':
		s, ok := jsonString(raw)
		if !ok {
			return nil, false
		}
		return jwt.ClaimStrings{s}, true
	case '[':
		var a []string
		if json.Unmarshal(raw, &a) != nil {
			return nil, false
		}
		return jwt.ClaimStrings(a), true
	}
	return nil, false
}

// jsonString decodes a JSON string member. A plain ASCII string without
// escapes is its own content (no encoding/json call, which the fresh-token
// profile showed per member); anything else goes through encoding/json.
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && plainASCII(raw[1:len(raw)-1]) {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// stringOrList reads a member that may be a space-separated string or an
// array of strings ("scope", "scp").
func stringOrList(raw json.RawMessage) ([]string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, true
	}
	switch raw[0] {
	case '"':
		s, ok := jsonString(raw)
		if !ok {
			return nil, false
		}
		return strings.Fields(s), true
	case '[':
		var a []string
		if json.Unmarshal(raw, &a) != nil {
			return nil, false
		}
		out := make([]string, 0, len(a))
		for _, s := range a {
			out = append(out, strings.Fields(s)...)
		}
		return out, true
	}
	return nil, false
}

// check validates the claims that need no key: typ, exp, nbf, iat, aud and
// sub (required and non-empty).
// It runs before any key lookup so that expired or foreign tokens never cause
// a JWKS fetch. Leeway applies to exp, nbf and iat: a token is accepted while
// now < exp+leeway, now >= nbf-leeway and now >= iat-leeway.
func (c *tokenClaims) check(now time.Time, leeway time.Duration, wantAud string) error {
	if len(c.Typ) > 0 {
		typ, ok := jsonString(c.Typ)
		if !ok {
			return invalid(reasonType, "the typ claim is not a string")
		}
		if strings.EqualFold(typ, "ID") {
			return invalid(reasonType, "ID tokens are not access tokens")
		}
	}
	var present, ok bool
	if c.exp, present, ok = numericDate(c.Exp); !ok {
		return invalid(reasonMalformed, "exp is not a NumericDate")
	} else if !present {
		return invalid(reasonMissingClaim, "exp is required")
	}
	if c.nbf, _, ok = numericDate(c.Nbf); !ok {
		return invalid(reasonMalformed, "nbf is not a NumericDate")
	}
	if c.iat, _, ok = numericDate(c.Iat); !ok {
		return invalid(reasonMalformed, "iat is not a NumericDate")
	}
	if !now.Before(c.exp.Add(leeway)) {
		return invalid(reasonExpired, "token has expired")
	}
	if c.nbf != nil && now.Before(c.nbf.Add(-leeway)) {
		return invalid(reasonNotYetValid, "token is not valid yet (nbf)")
	}
	if c.iat != nil && now.Before(c.iat.Add(-leeway)) {
		return invalid(reasonNotYetValid, "token was issued in the future (iat)")
	}
	if c.aud, ok = audience(c.Aud); !ok {
		if len(c.Aud) == 0 {
			return invalid(reasonAudience, "aud is required")
		}
		return invalid(reasonAudience, "aud is not a string or an array of strings")
	}
	matched := false
	for _, a := range c.aud {
		// wantAud is canonical; an exact match needs no URL parsing.
		if a == wantAud || SameResource(a, wantAud) {
			matched = true
			break
		}
	}
	if !matched {
		return invalid(reasonAudience, "aud does not contain this resource")
	}
	if c.scopes, ok = stringOrList(c.Scope); !ok {
		return invalid(reasonMalformed, "scope is not a string")
	}
	if len(c.Scope) == 0 || string(c.Scope) == "null" {
		if c.scopes, ok = stringOrList(c.Scp); !ok {
			return invalid(reasonMalformed, "scp is not a string or an array of strings")
		}
	}
	// RFC 9068 §2.2: sub is required. Without it the token names no user,
	// and everything keyed by user (the upstream token cache) would lump
	// all such tokens together.
	if c.Sub == "" {
		return invalid(reasonMissingClaim, "sub is required")
	}
	return nil
}

// GetExpirationTime implements jwt.Claims (valid after check).
func (c *tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.exp, nil }

// GetIssuedAt implements jwt.Claims (valid after check).
func (c *tokenClaims) GetIssuedAt() (*jwt.NumericDate, error) { return c.iat, nil }

// GetNotBefore implements jwt.Claims (valid after check).
func (c *tokenClaims) GetNotBefore() (*jwt.NumericDate, error) { return c.nbf, nil }

// GetIssuer implements jwt.Claims.
func (c *tokenClaims) GetIssuer() (string, error) { return c.Iss, nil }

// GetSubject implements jwt.Claims.
func (c *tokenClaims) GetSubject() (string, error) { return c.Sub, nil }

// GetAudience implements jwt.Claims (valid after check).
func (c *tokenClaims) GetAudience() (jwt.ClaimStrings, error) { return c.aud, nil }

// toClaims builds the public Claims (valid after check).
func (c *tokenClaims) toClaims() *Claims {
	out := &Claims{
		Issuer:   c.Iss,
		Subject:  c.Sub,
		Audience: []string(c.aud),
		ClientID: c.ClientID,
		Scope:    strings.Join(c.scopes, " "),
		Scopes:   c.scopes,
		Expiry:   c.exp.Time,
		ID:       c.Jti,

		HasScopeClaim: present(c.Scope) || present(c.Scp),
	}
	if out.ClientID == "" {
		out.ClientID = c.Azp
	}
	if c.iat != nil {
		out.IssuedAt = c.iat.Time
	}
	if c.nbf != nil {
		out.NotBefore = c.nbf.Time
	}
	out.identity = [4]any{out.Subject, out.Scope, out.ClientID, out.Issuer}
	return out
}
