package toolpolicy

import (
	"bytes"
	"encoding/base64"
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
// payload of a token the verifier accepted. Claim names are matched
// exactly; a claim given twice counts with its last value, as
// encoding/json reads it.
func (p *Policy) Identity(payload []byte) (*Identity, error) {
	n := len(p.claimPaths)
	id := &Identity{claims: make([][]string, n), single: make([]bool, n)}
	raws := make([][]byte, n+3) // claims, then scope_claim, "scope", "scp"
	s := &scanner{b: payload}
	if s.peek() != '{' || p.walk(s, p.paths, raws) != nil || s.end() != nil {
		return nil, ErrBadClaims
	}
	raw := raws[n]
	if p.scopePath == nil {
		if raw = raws[n+1]; isNull(raw) {
			raw = raws[n+2]
		}
	}
	scopes, ok := scopeList(raw)
	if !ok {
		return nil, ErrBadClaims
	}
	id.scopes = scopes
	for i := range n {
		id.claims[i], id.single[i] = claimValues(raws[i])
	}
	return id, nil
}

// pathNode is one key of the claim paths a policy reads: the targets that
// end at it (indexes into the raws of Identity) and the keys below it.
type pathNode struct {
	key      string
	targets  []int
	children []*pathNode
}

// buildPaths makes the tree of every claim path, the scope claim, and the
// default "scope" and "scp".
func (p *Policy) buildPaths() {
	root := &pathNode{}
	add := func(path []string, target int) {
		n := root
		for _, k := range path {
			var next *pathNode
			for _, c := range n.children {
				if c.key == k {
					next = c
					break
				}
			}
			if next == nil {
				next = &pathNode{key: k}
				n.children = append(n.children, next)
			}
			n = next
		}
		n.targets = append(n.targets, target)
	}
	n := len(p.claimPaths)
	for i, path := range p.claimPaths {
		add(path, i)
	}
	if p.scopePath != nil {
		add(p.scopePath, n)
	} else {
		add([]string{"scope"}, n+1)
		add([]string{"scp"}, n+2)
	}
	p.paths = root
}

// walk scans the object at s, recording the raw value of every target
// below node and descending into objects on a path.
func (p *Policy) walk(s *scanner, node *pathNode, raws [][]byte) error {
	return s.object(func(key []byte, plain bool) error {
		var child *pathNode
		for _, c := range node.children {
			if plain && string(key[1:len(key)-1]) == c.key {
				child = c
				break
			}
			if !plain {
				if k, err := decodeString(key, false); err == nil && k == c.key {
					child = c
					break
				}
			}
		}
		if child == nil {
			return s.skip()
		}
		start := s.i
		v, err := s.value()
		if err != nil {
			return err
		}
		for _, t := range child.targets {
			raws[t] = v
		}
		if len(child.children) > 0 && v[0] == '{' {
			return p.walk(&scanner{b: s.b[:s.i], i: start, depth: s.depth}, child, raws)
		}
		return nil
	})
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

// isNull reports an absent or null member.
func isNull(raw []byte) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// scopeList reads a space-separated string or an array of strings (each
// element split on spaces too, as jwtverify does). Absent or null: no
// scopes.
func scopeList(raw []byte) ([]string, bool) {
	if isNull(raw) {
		return nil, true
	}
	s := &scanner{b: raw}
	switch s.peek() {
	case '"':
		v, ok := scanString(s)
		return strings.Fields(v), ok
	case '[':
		var out []string
		err := s.array(func() error {
			v, ok := scanString(s)
			if !ok {
				return errSyntax
			}
			out = append(out, strings.Fields(v)...)
			return nil
		})
		return out, err == nil
	}
	return nil, false
}

// scanString reads a string value at s.
func scanString(s *scanner) (string, bool) {
	raw, plain, err := s.str()
	if err != nil {
		return "", false
	}
	v, err := decodeString(raw, plain)
	return v, err == nil
}

// claimValues reads a claim for the matchers: a string, number or boolean
// is one value (numbers and booleans as their JSON text); an array gives
// its scalar elements. Anything else matches nothing.
func claimValues(raw []byte) (vals []string, single bool) {
	if isNull(raw) {
		return nil, false
	}
	s := &scanner{b: raw}
	if s.peek() == '[' {
		err := s.array(func() error {
			v, ok, err := scalar(s)
			if ok {
				vals = append(vals, v)
			}
			return err
		})
		if err != nil {
			return nil, false
		}
		return vals, false
	}
	if v, ok, err := scalar(s); ok && err == nil {
		return []string{v}, true
	}
	return nil, false
}

// scalar reads the value at s: a string's content, or a number's or
// boolean's text (ok); any other value is skipped (not ok).
func scalar(s *scanner) (v string, ok bool, err error) {
	switch c := s.peek(); {
	case c == '"':
		v, ok := scanString(s)
		if !ok {
			return "", false, errSyntax
		}
		return v, true, nil
	case c == 't' || c == 'f' || c == '-' || c >= '0' && c <= '9':
		raw, err := s.value()
		return string(raw), err == nil, err
	}
	return "", false, s.skip()
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
