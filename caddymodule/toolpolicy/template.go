package toolpolicy

import "strings"

// A resources/templates/list result lists RFC 6570 URI templates
// ("file:///srv/{path}"), not URIs. A template stands for every URI it can
// expand to, and the policy's resources/read rules may allow some of those
// and refuse others, so "the call the policy would refuse" is not one
// decision as it is for a tool or a resource. The filter therefore hides a
// template only when the policy would refuse every URI it can expand to,
// and shows it whenever it cannot tell: a template hidden wrongly would
// hide resources the user may read, while one shown wrongly grants
// nothing, since every resources/read is decided on its own URI.
//
// It decides on the template's literal prefix, the text before its first
// expression, which every expansion starts with (cut before any character
// that RFC 6570 would percent-encode, and before "%"). A URI with that
// prefix is decided by an exact rule, else by the first glob that matches
// it, else by the default; so the template is shown when
//   - it has no expression: it is one URI, decided as resources/read;
//   - an exact rule naming a URI with that prefix allows the token;
//   - a glob that can match such a URI allows the token before any glob
//     that matches all of them (a prefix glob whose prefix the template's
//     starts with, or "*"); a glob can match unless its literal start (up
//     to its first "*" or "?") and the template's prefix differ before
//     one of them ends;
//   - no glob matches all of them and the default allows.
// Otherwise every URI the template can produce is refused, and it is
// hidden.

// templateVisible reports whether the token id may read some URI that the
// URI template tmpl can expand to, as far as its literal prefix tells.
func (p *Policy) templateVisible(id *Identity, tmpl string) bool {
	prefix, whole := templatePrefix(tmpl)
	if whole {
		return p.Allows(id, "resources/read", tmpl)
	}
	mr := p.methods["resources/read"]
	if mr == nil {
		return !p.defaultDeny
	}
	for uri, r := range mr.exact {
		if strings.HasPrefix(uri, prefix) && r.verdict(id).outcome == Allowed {
			return true
		}
	}
	for _, r := range mr.globs {
		if r.prefixOnly && strings.HasPrefix(prefix, r.prefix) {
			// r matches every URI with the prefix, so no later glob and
			// not the default decides any of them.
			return r.verdict(id).outcome == Allowed
		}
		if !strings.HasPrefix(prefix, r.literal) && !strings.HasPrefix(r.literal, prefix) {
			continue // the glob's literal start rules out every URI with the prefix
		}
		if r.verdict(id).outcome == Allowed {
			return true
		}
	}
	return !p.defaultDeny
}

// templatePrefix returns the literal start of an RFC 6570 URI template that
// every expansion of it begins with, and whether that is the whole template
// (no expression, nothing that expansion would encode).
func templatePrefix(tmpl string) (prefix string, whole bool) {
	for i := 0; i < len(tmpl); i++ {
		if !literalKept(tmpl[i]) {
			return tmpl[:i], false
		}
	}
	return tmpl, true
}

// literalKept reports whether RFC 6570 (§3.1) copies byte c of a literal to
// the expansion unchanged: the unreserved and reserved characters. "{"
// starts an expression, "%" a triplet, and any other byte is
// percent-encoded.
func literalKept(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~:/?#[]@!$&'()*+,;=", c) >= 0
}
