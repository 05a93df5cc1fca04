package toolpolicy

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidConfig is wrapped by every error Compile returns.
var ErrInvalidConfig = errors.New("toolpolicy: invalid policy")

// Policy is a compiled, immutable tool policy. It is safe for concurrent use
// and cheap to evaluate: exact names are map lookups, globs are tried in
// order, and deciding an allowed call allocates nothing.
type Policy struct {
	methods     map[string]*methodRules
	defaultDeny bool
	scopePath   []string   // nil: "scope", else "scp"
	claimPaths  [][]string // every path a claim matcher reads, by index
	paths       *pathNode  // claimPaths and the scope claim as a tree, for Identity
	maxBody     int64
	maxResponse int64
}

// methodRules are the rules of one method.
type methodRules struct {
	exact map[string]*rule
	globs []*rule
	all   *rule // the rule of a method without a name
}

// rule is a compiled Rule.
type rule struct {
	index     int // position in Config.Rules, for messages
	method    string
	pattern   string
	deny      bool
	scopesAll []string
	scopesAny []string
	claims    []claimMatcher
	// prefixOnly: pattern is prefix followed by one "*" (the common
	// "read_*"), which matches exactly the names with that prefix.
	prefix     string
	prefixOnly bool
	// literal is the pattern up to its first "*" or "?": every name a
	// glob matches starts with it.
	literal string
}

// matches reports whether a glob rule's pattern matches name: globMatch,
// or a prefix comparison for patterns that are a prefix and one "*".
func (r *rule) matches(name string) bool {
	if r.prefixOnly {
		return strings.HasPrefix(name, r.prefix)
	}
	return globMatch(r.pattern, name)
}

// claimOp is the test a claimMatcher applies.
type claimOp uint8

const (
	opEquals claimOp = iota + 1
	opIn
	opContains
	opPrefix
	opSuffix
)

// claimMatcher is a compiled ClaimMatch.
type claimMatcher struct {
	path  int    // index into Policy.claimPaths and Identity.claims
	name  string // the claim path as written, for reasons
	op    claimOp
	value string
	in    []string
}

// Compile validates cfg and returns the Policy it describes. Its errors
// wrap ErrInvalidConfig and name the rule (by position, method and name)
// and the problem: an unknown method, an empty or superfluous name, a name
// both allowed and denied, a rule no call can reach, a bad claim path or
// matcher, an unknown effect or default.
func Compile(cfg Config) (*Policy, error) {
	p := &Policy{
		methods:     make(map[string]*methodRules),
		maxBody:     cfg.MaxBodyBytes,
		maxResponse: cfg.MaxResponseBytes,
	}
	switch cfg.Default {
	case "", Allow:
	case Deny:
		p.defaultDeny = true
	default:
		return nil, invalidf("default %q: must be %q or %q", cfg.Default, Allow, Deny)
	}
	if p.maxBody < 0 || p.maxResponse < 0 {
		return nil, invalidf("max_body_bytes and max_response_bytes must not be negative")
	}
	if p.maxBody == 0 {
		p.maxBody = DefaultMaxBodyBytes
	}
	if p.maxResponse == 0 {
		p.maxResponse = DefaultMaxResponseBytes
	}
	if cfg.ScopeClaim != "" {
		path, err := parseClaimPath(cfg.ScopeClaim)
		if err != nil {
			return nil, invalidf("scope_claim: %v", err)
		}
		p.scopePath = path
	}
	paths := map[string]int{}
	for i, r := range cfg.Rules {
		cr, err := p.compileRule(i, r, paths)
		if err != nil {
			return nil, err
		}
		if err := p.add(cr); err != nil {
			return nil, err
		}
	}
	p.buildPaths()
	return p, nil
}

// compileRule checks one rule on its own.
func (p *Policy) compileRule(i int, r Rule, paths map[string]int) (*rule, error) {
	where := fmt.Sprintf("rule %d (%s %q)", i+1, r.Method, r.Name)
	if r.Method == "" {
		return nil, invalidf("rule %d: method is required", i+1)
	}
	info, ok := knownMethods[r.Method]
	if !ok {
		return nil, invalidf("%s: unknown MCP method %q", where, r.Method)
	}
	switch {
	case info.named != noName && r.Name == "":
		return nil, invalidf("%s: empty name pattern; %s names a %s, use \"*\" for all", where, r.Method, objectOf(r.Method))
	case info.named == noName && r.Name != "":
		return nil, invalidf("%s: %s names nothing, so the rule takes no name", where, r.Method)
	}
	cr := &rule{index: i + 1, method: r.Method, pattern: r.Name}
	cr.prefix, cr.prefixOnly = prefixGlob(r.Name)
	cr.literal = r.Name
	if i := strings.IndexAny(r.Name, "*?"); i >= 0 {
		cr.literal = r.Name[:i]
	}
	switch r.Effect {
	case "", Allow:
	case Deny:
		cr.deny = true
		req := r.Require
		if len(req.ScopesAll)+len(req.ScopesAny)+len(req.Claims) > 0 {
			return nil, invalidf("%s: a deny rule takes no require", where)
		}
	default:
		return nil, invalidf("%s: effect %q: must be %q or %q", where, r.Effect, Allow, Deny)
	}
	var err error
	if cr.scopesAll, err = checkScopes(r.Require.ScopesAll); err != nil {
		return nil, invalidf("%s: scopes_all: %v", where, err)
	}
	if cr.scopesAny, err = checkScopes(r.Require.ScopesAny); err != nil {
		return nil, invalidf("%s: scopes_any: %v", where, err)
	}
	for j, m := range r.Require.Claims {
		cm, err := compileClaim(m, paths, &p.claimPaths)
		if err != nil {
			return nil, invalidf("%s: claims[%d]: %v", where, j, err)
		}
		cr.claims = append(cr.claims, cm)
	}
	return cr, nil
}

// add files a checked rule under its method, refusing conflicts.
func (p *Policy) add(cr *rule) error {
	mr := p.methods[cr.method]
	if mr == nil {
		mr = &methodRules{exact: map[string]*rule{}}
		p.methods[cr.method] = mr
	}
	if methodNameKind(cr.method) == noName {
		if mr.all != nil {
			return conflict(mr.all, cr)
		}
		mr.all = cr
		return nil
	}
	if !isGlob(cr.pattern) {
		if prev := mr.exact[cr.pattern]; prev != nil {
			return conflict(prev, cr)
		}
		mr.exact[cr.pattern] = cr
		return nil
	}
	for _, prev := range mr.globs {
		if prev.pattern == cr.pattern {
			return conflict(prev, cr)
		}
		if strings.Trim(prev.pattern, "*") == "" {
			return invalidf("rule %d (%s %q) is never used: rule %d (%q) matches every %s first",
				cr.index, cr.method, cr.pattern, prev.index, prev.pattern, objectOf(cr.method))
		}
	}
	mr.globs = append(mr.globs, cr)
	return nil
}

// conflict describes two rules for the same method and name.
func conflict(prev, cr *rule) error {
	what := objectOf(cr.method)
	if cr.pattern == "" {
		what, cr.pattern = "method", cr.method
	}
	if prev.deny != cr.deny {
		return invalidf("%s %q is both allowed and denied (rules %d and %d, %s)",
			what, cr.pattern, prev.index, cr.index, cr.method)
	}
	return invalidf("%s %q is listed twice (rules %d and %d, %s)", what, cr.pattern, prev.index, cr.index, cr.method)
}

// objectOf names what a method's calls name, for messages.
func objectOf(method string) string {
	switch methodNameKind(method) {
	case nameField:
		if strings.HasPrefix(method, "prompts/") {
			return "prompt"
		}
		return "tool"
	case uriField:
		return "resource URI"
	}
	return "name"
}

// checkScopes refuses empty scopes and scopes with spaces or quotes, which
// could not appear in a token or a challenge (RFC 6749 §3.3 scope-token).
func checkScopes(scopes []string) ([]string, error) {
	for _, s := range scopes {
		if s == "" {
			return nil, errors.New("empty scope")
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c <= 0x20 || c == '"' || c == '\\' || c >= 0x7f {
				return nil, fmt.Errorf("scope %q: not a valid scope token", s)
			}
		}
	}
	if len(scopes) == 0 {
		return nil, nil
	}
	return scopes, nil
}

// compileClaim checks one claim matcher and registers its path.
func compileClaim(m ClaimMatch, paths map[string]int, all *[][]string) (claimMatcher, error) {
	path, err := parseClaimPath(m.Claim)
	if err != nil {
		return claimMatcher{}, err
	}
	cm := claimMatcher{name: m.Claim}
	n := 0
	if m.Equals != "" {
		n, cm.op, cm.value = n+1, opEquals, m.Equals
	}
	if len(m.In) > 0 {
		n, cm.op, cm.in = n+1, opIn, m.In
	} else if m.In != nil {
		return claimMatcher{}, fmt.Errorf("claim %q: \"in\" is an empty list", m.Claim)
	}
	if m.Contains != "" {
		n, cm.op, cm.value = n+1, opContains, m.Contains
	}
	if m.Prefix != "" {
		n, cm.op, cm.value = n+1, opPrefix, m.Prefix
	}
	if m.Suffix != "" {
		n, cm.op, cm.value = n+1, opSuffix, m.Suffix
	}
	if n != 1 {
		return claimMatcher{}, fmt.Errorf("claim %q: set exactly one of equals, in, contains, prefix, suffix (found %d)", m.Claim, n)
	}
	idx, ok := paths[m.Claim]
	if !ok {
		idx = len(*all)
		paths[m.Claim] = idx
		*all = append(*all, path)
	}
	cm.path = idx
	return cm, nil
}

// parseClaimPath splits a dotted claim path, refusing empty segments.
func parseClaimPath(s string) ([]string, error) {
	if s == "" {
		return nil, errors.New("empty claim path")
	}
	parts := strings.Split(s, ".")
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("claim path %q has an empty segment", s)
		}
	}
	return parts, nil
}

// invalidf builds an error wrapping ErrInvalidConfig.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}

// MaxBodyBytes is the request body bound (Config.MaxBodyBytes or its default).
func (p *Policy) MaxBodyBytes() int64 { return p.maxBody }

// NeedsClaims reports whether the policy reads any claim besides the
// default "scope"/"scp". When it does not, IdentityFromScopes can be used
// with the scopes the verifier already parsed, and the token payload need
// not be decoded again.
func (p *Policy) NeedsClaims() bool { return p.scopePath != nil || len(p.claimPaths) > 0 }
