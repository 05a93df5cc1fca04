package toolpolicy

import (
	"strings"
	"unicode/utf8"
)

// isGlob reports whether a Name pattern is a glob rather than an exact name.
func isGlob(pattern string) bool { return strings.ContainsAny(pattern, "*?") }

// prefixGlob reports whether pattern is a literal prefix followed by a
// single "*", and returns the prefix. globMatch(pattern, name) is then
// strings.HasPrefix(name, prefix): the literal bytes must match the start
// of name one for one, and the "*" takes whatever is left.
func prefixGlob(pattern string) (string, bool) {
	prefix, ok := strings.CutSuffix(pattern, "*")
	if !ok || strings.ContainsAny(prefix, "*?") {
		return "", false
	}
	return prefix, true
}

// globMatch reports whether name matches pattern, where "*" matches any run
// of characters (including none, and including "/", unlike path.Match, so
// that "file:///srv/*" covers a whole tree) and "?" exactly one character.
// Every other character matches itself. It runs in O(len(pattern) *
// len(name)) at worst and allocates nothing.
func globMatch(pattern, name string) bool {
	px, nx := 0, 0
	// Where to resume after the last "*": the pattern just past it, and the
	// name position it is currently assumed to cover up to.
	starPx, starNx := -1, 0
	for px < len(pattern) || nx < len(name) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				starPx, starNx = px, nx
				px++
				continue
			case '?':
				if nx < len(name) {
					_, n := utf8.DecodeRuneInString(name[nx:])
					px++
					nx += n
					continue
				}
			default:
				if nx < len(name) && name[nx] == c {
					px++
					nx++
					continue
				}
			}
		}
		if starPx >= 0 && starNx < len(name) {
			_, n := utf8.DecodeRuneInString(name[starNx:])
			starNx += n
			px, nx = starPx+1, starNx
			continue
		}
		return false
	}
	return true
}
