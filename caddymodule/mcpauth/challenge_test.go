package mcpauth

import (
	"net/http"
	"strings"
	"testing"
)

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
