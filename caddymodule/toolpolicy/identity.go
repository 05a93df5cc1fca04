package toolpolicy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// ErrBadClaims is returned when a token payload is not a JSON object or a
// claim the policy reads has the wrong type (scopes not a string or list of
// strings). The gateway should treat it as an invalid token (401), which it
// cannot be after a successful verification unless the policy's scope_claim
// names something odd; the error never contains claim values.
var ErrBadClaims = errors.New("toolpolicy: the token's claims cannot be read")

// Identity is what the policy reads from one verified token: its scopes and
// the claims its matchers test. Build it once per token (Policy.Identity)
// and reuse it for every decision on requests with that token; it is
// immutable and safe for concurrent use.
type Identity struct {
	scopes []string
	claims [][]string // by Policy.claimPaths index; nil: absent or unmatchable
	single []bool     // the claim was a single value, not an array
}

// Scopes returns the token's scopes as the policy reads them. Treat it as
// read-only.
func (id *Identity) Scopes() []string { return id.scopes }

// IdentityFromScopes builds an Identity from scopes alone (what
// jwtverify.Claims.Scopes holds). Every claim matcher fails against it, so
// use it only when NeedsClaims reports false.
func (p *Policy) IdentityFromScopes(scopes []string) *Identity {
	return &Identity{
		scopes: scopes,
		claims: make([][]string, len(p.claimPaths)),
		single: make([]bool, len(p.claimPaths)),
	}
}

// Identity reads the claims the policy needs from a verified token's JSON
// payload (the decoded middle segment of the JWT). Call it only with the
// payload of a token the verifier accepted.
func (p *Policy) Identity(payload []byte) (*Identity, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(payload, &top); err != nil || top == nil {
		return nil, ErrBadClaims
	}
	id := &Identity{
		claims: make([][]string, len(p.claimPaths)),
		single: make([]bool, len(p.claimPaths)),
	}
	if p.scopePath != nil {
		raw := lookup(top, p.scopePath)
		s, ok := scopeList(raw)
		if !ok {
			return nil, ErrBadClaims
		}
		id.scopes = s
	} else {
		raw := top["scope"]
		if isNull(raw) {
			raw = top["scp"]
		}
		s, ok := scopeList(raw)
		if !ok {
			return nil, ErrBadClaims
		}
		id.scopes = s
	}
	for i, path := range p.claimPaths {
		id.claims[i], id.single[i] = claimValues(lookup(top, path))
	}
	return id, nil
}

// IdentityFromJWT is Identity for a compact JWT the verifier has accepted:
// it decodes the payload segment (base64url without padding) and reads it.
// It checks nothing else, so it must never see an unverified token.
func (p *Policy) IdentityFromJWT(verified string) (*Identity, error) {
	_, rest, ok := strings.Cut(verified, ".")
	if !ok {
		return nil, ErrBadClaims
	}
	seg, _, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, ErrBadClaims
	}
	payload, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return nil, ErrBadClaims
	}
	return p.Identity(payload)
}

// lookup follows a dotted path through nested objects.
func lookup(top map[string]json.RawMessage, path []string) json.RawMessage {
	raw, ok := top[path[0]]
	if !ok {
		return nil
	}
	for _, seg := range path[1:] {
		var obj map[string]json.RawMessage
		if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &obj) != nil {
			return nil
		}
		if raw, ok = obj[seg]; !ok {
			return nil
		}
	}
	return raw
}

// isNull reports an absent or null member.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// scopeList reads a space-separated string or an array of strings (each
// element split on spaces too, as jwtverify does). Absent or null: no
// scopes.
func scopeList(raw json.RawMessage) ([]string, bool) {
	if isNull(raw) {
		return nil, true
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, false
		}
		return strings.Fields(s), true
	case '[':
		var a []string
		if json.Unmarshal(raw, &a) != nil {
			return nil, false
		}
		var out []string
		for _, s := range a {
			out = append(out, strings.Fields(s)...)
		}
		return out, true
	}
	return nil, false
}

// claimValues reads a claim for the matchers: a string, number or boolean
// is one value (numbers and booleans as their JSON text); an array gives
// its scalar elements. Anything else matches nothing.
func claimValues(raw json.RawMessage) (vals []string, single bool) {
	if isNull(raw) {
		return nil, false
	}
	if raw[0] == '[' {
		var a []json.RawMessage
		if json.Unmarshal(raw, &a) != nil {
			return nil, false
		}
		vals = make([]string, 0, len(a))
		for _, e := range a {
			if v, ok := scalar(e); ok {
				vals = append(vals, v)
			}
		}
		return vals, false
	}
	if v, ok := scalar(raw); ok {
		return []string{v}, true
	}
	return nil, false
}

// scalar returns a JSON string's content, or a number's or boolean's text.
func scalar(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	case c == 't' || c == 'f' || c == '-' || (c >= '0' && c <= '9'):
		if !json.Valid(raw) {
			return "", false
		}
		return string(raw), true
	}
	return "", false
}

// match applies one claim matcher.
func (m *claimMatcher) match(id *Identity) bool {
	if m.path >= len(id.claims) {
		return false // an Identity built by another Policy
	}
	vals := id.claims[m.path]
	single := id.single[m.path]
	switch m.op {
	case opEquals:
		return single && vals[0] == m.value
	case opIn:
		if !single {
			return false
		}
		for _, v := range m.in {
			if vals[0] == v {
				return true
			}
		}
	case opContains:
		for _, v := range vals {
			if v == m.value {
				return true
			}
		}
	case opPrefix:
		return single && strings.HasPrefix(vals[0], m.value)
	case opSuffix:
		return single && strings.HasSuffix(vals[0], m.value)
	}
	return false
}
