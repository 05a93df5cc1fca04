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
