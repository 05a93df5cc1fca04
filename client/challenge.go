package client

import (
	"fmt"
	"strings"
)

// Challenge is one authentication challenge from a WWW-Authenticate header (RFC 7235 §2.1,
// §4.1). Scheme keeps the server's spelling; compare it with strings.EqualFold. Params holds the
// auth-params with lower-cased names and unquoted values; a repeated parameter keeps its first
// value (RFC 6750 §3 forbids repeats). Token68 is set instead of Params for the token68 form.
type Challenge struct {
	Scheme  string
	Params  map[string]string
	Token68 string
}

// Param returns the value of the auth-param name (case-insensitive), or "" when absent.
func (c Challenge) Param(name string) string { return c.Params[strings.ToLower(name)] }

// ParseChallenges parses the values of one or more WWW-Authenticate header fields, each of which
// may hold several comma-separated challenges, quoted strings with backslash escapes and
// optional whitespace around "=". It returns every challenge parsed before the first syntax
// error, together with that error, so a partly malformed header still yields its good part.
func ParseChallenges(headers []string) ([]Challenge, error) {
	var out []Challenge
	for _, h := range headers {
		cs, err := parseChallengeHeader(h)
		out = append(out, cs...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// BearerChallenge returns the first challenge with scheme "Bearer" in headers, if any.
// Malformed trailing parts are ignored once a Bearer challenge was found.
func BearerChallenge(headers []string) (Challenge, bool) {
	cs, _ := ParseChallenges(headers)
	for _, c := range cs {
		if strings.EqualFold(c.Scheme, "Bearer") {
			return c, true
		}
	}
	return Challenge{}, false
}

type authParser struct {
	s string
	i int
}

func (p *authParser) eof() bool  { return p.i >= len(p.s) }
func (p *authParser) peek() byte { return p.s[p.i] }

func (p *authParser) errf(format string, args ...any) error {
	return fmt.Errorf("malformed WWW-Authenticate at offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *authParser) skipWS() {
	for !p.eof() && (p.peek() == ' ' || p.peek() == '\t') {
		p.i++
	}
}

// skipListSep skips the whitespace and empty list elements of the RFC 7230 #rule.
func (p *authParser) skipListSep() {
	for !p.eof() && (p.peek() == ' ' || p.peek() == '\t' || p.peek() == ',') {
		p.i++
	}
}

func (p *authParser) token() string {
	start := p.i
	for !p.eof() && isTchar(p.peek()) {
		p.i++
	}
	return p.s[start:p.i]
}

// tryToken68 consumes a token68 when one stands alone up to the end or the next comma.
func (p *authParser) tryToken68() (string, bool) {
	start := p.i
	for !p.eof() && isToken68Char(p.peek()) {
		p.i++
	}
	if p.i == start {
		return "", false
	}
	for !p.eof() && p.peek() == '=' {
		p.i++
	}
	end := p.i
	p.skipWS()
	if p.eof() || p.peek() == ',' {
		return p.s[start:end], true
	}
	p.i = start
	return "", false
}

// startsParam reports whether, at position i, a token is followed by optional whitespace and "=".
func (p *authParser) startsParam(i int) bool {
	j := i
	for j < len(p.s) && isTchar(p.s[j]) {
		j++
	}
	if j == i {
		return false
	}
	for j < len(p.s) && (p.s[j] == ' ' || p.s[j] == '\t') {
		j++
	}
	return j < len(p.s) && p.s[j] == '='
}

func (p *authParser) quoted() (string, error) {
	p.i++ // opening quote
	var b strings.Builder
	for !p.eof() {
		c := p.peek()
		switch {
		case c == '"':
			p.i++
			return b.String(), nil
		case c == '\\':
			p.i++
			if p.eof() {
				return "", p.errf("unterminated escape in quoted string")
			}
			b.WriteByte(p.peek())
			p.i++
		case c < 0x20 && c != '\t' || c == 0x7f:
			return "", p.errf("control character in quoted string")
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", p.errf("unterminated quoted string")
}

func parseChallengeHeader(s string) ([]Challenge, error) {
	p := &authParser{s: s}
	var out []Challenge
	for {
		p.skipListSep()
		if p.eof() {
			return out, nil
		}
		scheme := p.token()
		if scheme == "" {
			return out, p.errf("expected an auth scheme, found %q", p.peek())
		}
		if !p.eof() && p.peek() != ' ' && p.peek() != '\t' && p.peek() != ',' {
			return out, p.errf("unexpected %q after auth scheme", p.peek())
		}
		c := Challenge{Scheme: scheme, Params: map[string]string{}}
		p.skipWS()
		if t, ok := p.tryToken68(); ok { // only when it stands alone up to "," or the end
			c.Token68 = t
			out = append(out, c)
			continue
		}
		for {
			p.skipWS()
			if p.eof() {
				break
			}
			if p.peek() == ',' {
				save := p.i
				p.skipListSep()
				if p.eof() {
					break
				}
				if !p.startsParam(p.i) {
					p.i = save // the next challenge starts here
					break
				}
			}
			name := p.token()
			if name == "" {
				return append(out, c), p.errf("expected an auth-param name, found %q", p.peek())
			}
			p.skipWS()
			if p.eof() || p.peek() != '=' {
				return append(out, c), p.errf("expected '=' after %q", name)
			}
			p.i++
			p.skipWS()
			var val string
			if !p.eof() && p.peek() == '"' {
				v, err := p.quoted()
				if err != nil {
					return append(out, c), err
				}
				val = v
			} else {
				val = p.token()
				if val == "" {
					return append(out, c), p.errf("expected a value for %q", name)
				}
			}
			key := strings.ToLower(name)
			if _, dup := c.Params[key]; !dup {
				c.Params[key] = val
			}
			p.skipWS()
			if !p.eof() && p.peek() != ',' {
				return append(out, c), p.errf("expected ',' after the value of %q", name)
			}
		}
		out = append(out, c)
	}
}

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken68Char(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~+/", c) >= 0
}
