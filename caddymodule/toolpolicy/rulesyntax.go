package toolpolicy

import (
	"errors"
	"fmt"
)

// ParseRule reads one rule from the words of a line, the form the mcp_auth
// Caddyfile adapter hands on (d.Val() followed by d.RemainingArgs()):
//
//	allow|deny <method> [<name>] [scopes_all <scope>...] [scopes_any <scope>...]
//	           [claim <path> equals|contains|prefix|suffix <value>]...
//	           [claim <path> in <value>...]...
//
// <name> is given exactly when the method names something (tools/call,
// prompts/get, the resources methods): a tool or prompt name or a resource
// URI, exact or a glob. A list (scopes, in values) runs to the next keyword
// (scopes_all, scopes_any, claim), so none of those can be a scope or a
// value. For example:
//
//	deny  tools/call delete_*
//	allow tools/call read_* scopes_any read admin
//	allow tools/call admin_* claim groups contains admins claim email suffix @example.com
//	allow tools/list scopes_all mcp:tools
//
// ParseRule checks the line's shape; Compile checks the rule's meaning.
func ParseRule(words []string) (Rule, error) {
	var r Rule
	if len(words) < 2 {
		return r, errors.New("a rule is: allow|deny <method> [<name>] [requirements]")
	}
	switch words[0] {
	case Allow, Deny:
		r.Effect = words[0]
	default:
		return r, fmt.Errorf("a rule starts with allow or deny, not %q", words[0])
	}
	r.Method = words[1]
	rest := words[2:]
	if methodNameKind(r.Method) != noName {
		if len(rest) == 0 || isRuleKeyword(rest[0]) {
			return r, fmt.Errorf("%s %s: the %s is missing (\"*\" for all)", words[0], r.Method, objectOf(r.Method))
		}
		r.Name, rest = rest[0], rest[1:]
	}
	for len(rest) > 0 {
		kw := rest[0]
		rest = rest[1:]
		switch kw {
		case "scopes_all", "scopes_any":
			var list []string
			list, rest = takeList(rest)
			if len(list) == 0 {
				return r, fmt.Errorf("%s needs at least one scope", kw)
			}
			if kw == "scopes_all" {
				r.Require.ScopesAll = append(r.Require.ScopesAll, list...)
			} else {
				r.Require.ScopesAny = append(r.Require.ScopesAny, list...)
			}
		case "claim":
			if len(rest) < 3 {
				return r, errors.New("claim needs a path, a test and a value: claim <path> equals|in|contains|prefix|suffix <value>")
			}
			m := ClaimMatch{Claim: rest[0]}
			op := rest[1]
			rest = rest[2:]
			if op == "in" {
				m.In, rest = takeList(rest)
				if len(m.In) == 0 {
					return r, fmt.Errorf("claim %s in needs at least one value", m.Claim)
				}
			} else {
				if isRuleKeyword(rest[0]) {
					return r, fmt.Errorf("claim %s %s needs a value", m.Claim, op)
				}
				v := rest[0]
				rest = rest[1:]
				switch op {
				case "equals":
					m.Equals = v
				case "contains":
					m.Contains = v
				case "prefix":
					m.Prefix = v
				case "suffix":
					m.Suffix = v
				default:
					return r, fmt.Errorf("claim %s: unknown test %q (equals, in, contains, prefix, suffix)", m.Claim, op)
				}
			}
			r.Require.Claims = append(r.Require.Claims, m)
		default:
			return r, fmt.Errorf("unexpected %q: requirements are scopes_all, scopes_any and claim", kw)
		}
	}
	return r, nil
}

// isRuleKeyword reports the words that start a requirement.
func isRuleKeyword(w string) bool {
	return w == "scopes_all" || w == "scopes_any" || w == "claim"
}

// takeList takes words up to the next keyword.
func takeList(words []string) (list, rest []string) {
	i := 0
	for i < len(words) && !isRuleKeyword(words[i]) {
		i++
	}
	return words[:i], words[i:]
}
