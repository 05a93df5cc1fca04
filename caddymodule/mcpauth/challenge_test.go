package mcpauth

import (
	"net/http"
	"strings"
	"testing"
)

func TestBearerToken(t *testing.T) {
	for _, c := range []struct {
		name   string
		values []string
		tok    string
		res    bearerResult
	}{
		{"none", nil, "", bearerMissing},
		{"bearer", []string{"Bearer abc.def-ghi_~+/=="}, "abc.def-ghi_~+/==", bearerPresent},
		{"lower case scheme", []string{"bearer abc"}, "abc", bearerPresent},
		{"mixed case scheme", []string{"BeArEr abc"}, "abc", bearerPresent},
		{"several spaces", []string{"Bearer    abc  "}, "abc", bearerPresent},
		{"basic", []string{"Basic dTpw"}, "", bearerMissing},
		{"bearer prefix of another scheme", []string{"Bearerx abc"}, "", bearerMissing},
		{"empty", []string{""}, "", bearerMissing},
		{"scheme only", []string{"Bearer"}, "", bearerMalformed},
		{"scheme and space", []string{"Bearer "}, "", bearerMalformed},
		{"scheme and tab", []string{"Bearer\t \t"}, "", bearerMalformed},
		// The b64token grammar is the handler's check, on the rejecting
		// paths (TestMalformedBearerReason): these come back as they are.
		{"two tokens", []string{"Bearer a b"}, "a b", bearerPresent},
		{"quote", []string{`Bearer "abc"`}, `"abc"`, bearerPresent},
		{"padding in the middle", []string{"Bearer ab=c"}, "ab=c", bearerPresent},
		{"two headers", []string{"Bearer a", "Bearer b"}, "", bearerDuplicate},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range c.values {
				h.Add("Authorization", v)
			}
			tok, res := bearerToken(h)
			if tok != c.tok || res != c.res {
				t.Errorf("bearerToken(%q) = %q, %v; want %q, %v", c.values, tok, res, c.tok, c.res)
			}
		})
	}
}

func TestChallengeString(t *testing.T) {
	for _, c := range []struct {
		p    challengeParams
		want string
	}{
		{challengeParams{}, "Bearer"},
		{challengeParams{ResourceMetadata: "https://x/.well-known/oauth-protected-resource", Scope: "a b"},
			`Bearer resource_metadata="https://x/.well-known/oauth-protected-resource", scope="a b"`},
		{challengeParams{ResourceMetadata: "https://x/m", Error: "invalid_token"},
			`Bearer resource_metadata="https://x/m", error="invalid_token"`},
		{challengeParams{Scope: `we"ird\ one`, Error: "insufficient_scope", ErrorDescription: "line\r\nInjected: yes"},
			`Bearer scope="we\"ird\\ one", error="insufficient_scope", error_description="lineInjected: yes"`},
	} {
		if got := c.p.String(); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}

// parseChallenge is an independent RFC 9110 auth-param parser used to check
// that challengeParams.String round-trips.
func parseChallenge(s string) (map[string]string, bool) {
	if !strings.HasPrefix(s, "Bearer") {
		return nil, false
	}
	s = strings.TrimPrefix(s, "Bearer")
	out := map[string]string{}
	s = strings.TrimLeft(s, " ")
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || len(s) < eq+2 || s[eq+1] != '"' {
			return nil, false
		}
		name := s[:eq]
		s = s[eq+2:]
		var val strings.Builder
		closed := false
		for i := 0; i < len(s); i++ {
			switch s[i] {
			case '\\':
				if i+1 >= len(s) {
					return nil, false
				}
				i++
				val.WriteByte(s[i])
			case '"':
				s = s[i+1:]
				closed = true
			default:
				val.WriteByte(s[i])
			}
			if closed {
				break
			}
		}
		if !closed {
			return nil, false
		}
		out[name] = val.String()
		if s == "" {
			break
		}
		if !strings.HasPrefix(s, ", ") {
			return nil, false
		}
		s = s[2:]
	}
	return out, true
}

// printableASCII drops what writeQuoted drops.
func printableASCII(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x20 && s[i] < 0x7f {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// FuzzBearerAndChallenge fuzzes the untrusted-input paths: bearer extraction
// from any Authorization value, and challenge rendering of any values (which
// must never break the header or inject a line).
func FuzzBearerAndChallenge(f *testing.F) {
	f.Add("Bearer abc", "mcp:tools", "invalid_token")
	f.Add("bearer   a.b.c==", `sc"ope\`, "x\r\ny")
	f.Add("Bearer\t\x00", "\xff\xfe", "")
	f.Add("Basic Zm9v", "", "")
	f.Fuzz(func(t *testing.T, authz, scope, desc string) {
		h := http.Header{"Authorization": {authz}}
		tok, res := bearerToken(h)
		if res == bearerPresent {
			if tok == "" || strings.Trim(tok, " \t") != tok || !strings.Contains(authz, tok) {
				t.Fatalf("bearerToken(%q) returned bad token %q", authz, tok)
			}
		} else if tok != "" {
			t.Fatalf("bearerToken(%q) returned a token with result %v", authz, res)
		}
		p := challengeParams{ResourceMetadata: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", Scope: scope, Error: "invalid_token", ErrorDescription: desc}
		s := p.String()
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 || s[i] >= 0x7f {
				t.Fatalf("challenge contains byte %#x: %q", s[i], s)
			}
		}
		got, ok := parseChallenge(s)
		if !ok {
			t.Fatalf("challenge does not parse: %q", s)
		}
		if want := printableASCII(scope); want != "" && got["scope"] != want {
			t.Fatalf("scope round trip: got %q want %q", got["scope"], want)
		}
		if want := printableASCII(desc); want != "" && got["error_description"] != want {
			t.Fatalf("error_description round trip: got %q want %q", got["error_description"], want)
		}
	})
}

// isB64TokenSpec is RFC 6750's b64token grammar written out directly: the
// reference the word-at-a-time isB64Token must agree with.
func isB64TokenSpec(s string) bool {
	allowed := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0
	}
	i := 0
	for i < len(s) && allowed(s[i]) {
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

func TestIsB64Token(t *testing.T) {
	long := strings.Repeat("eyJhbGciOiJSUzI1NiJ9", 40)
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"", false}, {"=", false}, {"===", false}, {"a", true}, {"a=", true}, {"a==", true},
		{"ab=c", false}, {"a b", false}, {"abc.def-ghi_~+/==", true}, {"abcdefg\x00", false},
		{"abcdefgh", true}, {"abcdefghi", true}, {"abcdefg,", false}, {",bcdefgh", false},
		{long, true}, {long + "=", true}, {long + "\x80", false}, {long[:397] + "\"" + long[398:], false},
		{"a\xffb", false}, {"=a", false},
	} {
		if got := isB64Token(c.in); got != c.want || got != isB64TokenSpec(c.in) {
			t.Errorf("isB64Token(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func FuzzIsB64Token(f *testing.F) {
	for _, s := range []string{"", "a", "abc==", "ab=c", "abcdefgh=", "a.b.c", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isB64Token(s), isB64TokenSpec(s); got != want {
			t.Fatalf("isB64Token(%q) = %v, the grammar says %v", s, got, want)
		}
	})
}
