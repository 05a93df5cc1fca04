package toolpolicy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	allow := func(method, name string) Rule { return Rule{Method: method, Name: name} }
	deny := func(method, name string) Rule { return Rule{Method: method, Name: name, Effect: Deny} }
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error
	}{
		{"unknown method", Config{Rules: []Rule{allow("tools/run", "x")}}, `unknown MCP method "tools/run"`},
		{"missing method", Config{Rules: []Rule{{Name: "x"}}}, "rule 1: method is required"},
		{"empty pattern", Config{Rules: []Rule{allow("tools/call", "")}}, "empty name pattern"},
		{"empty uri pattern", Config{Rules: []Rule{allow("resources/read", "")}}, "names a resource URI"},
		{"name on unnamed method", Config{Rules: []Rule{allow("tools/list", "x")}}, "names nothing"},
		{"allowed and denied", Config{Rules: []Rule{allow("tools/call", "rm"), deny("tools/call", "rm")}}, `tool "rm" is both allowed and denied (rules 1 and 2`},
		{"glob allowed and denied", Config{Rules: []Rule{deny("tools/call", "rm_*"), allow("tools/call", "rm_*")}}, `tool "rm_*" is both allowed and denied`},
		{"listed twice", Config{Rules: []Rule{allow("prompts/get", "p"), allow("prompts/get", "p")}}, `prompt "p" is listed twice`},
		{"method twice", Config{Rules: []Rule{allow("tools/list", ""), deny("tools/list", "")}}, `method "tools/list" is both allowed and denied`},
		{"unreachable glob", Config{Rules: []Rule{allow("tools/call", "*"), deny("tools/call", "rm_*")}}, "rule 2 (tools/call \"rm_*\") is never used: rule 1"},
		{"bad effect", Config{Rules: []Rule{{Method: "tools/call", Name: "x", Effect: "block"}}}, `effect "block"`},
		{"deny with require", Config{Rules: []Rule{{Method: "tools/call", Name: "x", Effect: Deny, Require: Requirement{ScopesAll: []string{"a"}}}}}, "a deny rule takes no require"},
		{"bad default", Config{Default: "maybe"}, `default "maybe"`},
		{"empty scope", Config{Rules: []Rule{{Method: "tools/call", Name: "x", Require: Requirement{ScopesAll: []string{""}}}}}, "scopes_all: empty scope"},
		{"scope with space", Config{Rules: []Rule{{Method: "tools/call", Name: "x", Require: Requirement{ScopesAny: []string{"a b"}}}}}, `scopes_any: scope "a b"`},
		{"scope with quote", Config{Rules: []Rule{{Method: "tools/call", Name: "x", Require: Requirement{ScopesAll: []string{`a"`}}}}}, "not a valid scope token"},
		{"bad claim path", Config{Rules: []Rule{{Method: "tools/call", Name: "x", Require: Requirement{Claims: []ClaimMatch{{Claim: "realm_access..roles", Contains: "a"}}}}}}, "empty segment"},
		{"empty claim path", Config{Rules: []Rule{{Method: "tools/call", Name: "x", Require: Requirement{Claims: []ClaimMatch{{Contains: "a"}}}}}}, "claims[0]: empty claim path"},
		{"no matcher", Config{Rules: []Rule{{Method: "tools/call", Name: "x", Require: Requirement{Claims: []ClaimMatch{{Claim: "email"}}}}}}, "set exactly one of"},
		{"two matchers", Config{Rules: []Rule{{Method: "tools/call", Name: "x", Require: Requirement{Claims: []ClaimMatch{{Claim: "email", Prefix: "a", Suffix: "b"}}}}}}, "(found 2)"},
		{"empty in", Config{Rules: []Rule{{Method: "tools/call", Name: "x", Require: Requirement{Claims: []ClaimMatch{{Claim: "sub", In: []string{}}}}}}}, `"in" is an empty list`},
		{"bad scope claim", Config{ScopeClaim: ".roles"}, "scope_claim: claim path"},
		{"negative bound", Config{MaxBodyBytes: -1}, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.cfg)
			if err == nil {
				t.Fatalf("Compile succeeded (%v), want an error containing %q", p, tt.want)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	// A realistic policy in its JSON form: the shape mcp_auth embeds.
	const js = `{
		"default": "deny",
		"scope_claim": "realm_access.roles",
		"max_body_bytes": 65536,
		"rules": [
			{"method": "tools/call", "name": "delete_*", "effect": "deny"},
			{"method": "tools/call", "name": "delete_draft", "require": {"scopes_all": ["drafts"]}},
			{"method": "tools/call", "name": "read_*", "require": {"scopes_any": ["read", "admin"]}},
			{"method": "tools/call", "name": "*", "require": {"claims": [{"claim": "groups", "contains": "admins"}]}},
			{"method": "resources/read", "name": "file:///public/*"},
			{"method": "prompts/get", "name": "summarize", "require": {"claims": [{"claim": "email", "suffix": "@example.com"}]}},
			{"method": "tools/list", "require": {"scopes_all": ["mcp:tools"]}}
		]
	}`
	var cfg Config
	dec := json.NewDecoder(strings.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	p, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxBodyBytes() != 65536 || !p.NeedsClaims() {
		t.Errorf("MaxBodyBytes %d, NeedsClaims %v", p.MaxBodyBytes(), p.NeedsClaims())
	}
	if got := len(p.methods["tools/call"].globs); got != 3 {
		t.Errorf("%d tools/call globs, want 3", got)
	}
	if p.methods["tools/call"].exact["delete_draft"] == nil {
		t.Error("the exact rule is not in the exact map")
	}

	empty, err := Compile(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if empty.MaxBodyBytes() != DefaultMaxBodyBytes || empty.maxResponse != DefaultMaxResponseBytes || empty.NeedsClaims() {
		t.Errorf("defaults: body %d, response %d, NeedsClaims %v", empty.MaxBodyBytes(), empty.maxResponse, empty.NeedsClaims())
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "", true},
		{"*", "anything/at/all", true},
		{"read_*", "read_file", true},
		{"read_*", "read_", true},
		{"read_*", "rea", false},
		{"read_*", "xread_file", false},
		{"*_admin", "db_admin", true},
		{"*_admin", "db_admin2", false},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "abcbc", true},
		{"a*b*c", "aXbY", false},
		{"?", "é", true}, // one character, two bytes
		{"?", "ab", false},
		{"t?ol", "tool", true},
		{"t?ol", "tol", false},
		{"file:///srv/*", "file:///srv/a/b/c.txt", true},
		{"file:///srv/*", "file:///srv", false},
		{"**", "x", true},
		{"[a]", "[a]", true}, // brackets are literal
		{"[a]", "a", false},
	}
	for _, tt := range tests {
		if got := globMatch(tt.pattern, tt.name); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

// TestPrefixGlobSameAsGlobMatch: a rule whose pattern is a prefix and one
// "*" decides by strings.HasPrefix, which must agree with globMatch for
// every name, multi-byte and invalid UTF-8 included.
func TestPrefixGlobSameAsGlobMatch(t *testing.T) {
	patterns := []string{"read_*", "*", "é*", "file:///srv/*", "\xc3*", "a?*", "a**", "*a", "a*b"}
	names := []string{"", "read_", "read_file", "rea", "xread_file", "é", "éa", "\xc3", "\xc3\xa9", "\xa9",
		"file:///srv", "file:///srv/", "file:///srv/a/b", "a", "ab", "a*", "ba", "a\x80b"}
	prefixOnly := 0
	for _, pat := range patterns {
		r := &rule{pattern: pat}
		r.prefix, r.prefixOnly = prefixGlob(pat)
		if r.prefixOnly {
			prefixOnly++
		}
		for _, name := range names {
			if got, want := r.matches(name), globMatch(pat, name); got != want {
				t.Errorf("pattern %q (prefixOnly %v), name %q: matches %v, globMatch %v", pat, r.prefixOnly, name, got, want)
			}
		}
	}
	if prefixOnly != 5 {
		t.Errorf("%d patterns took the prefix path, want 5 (read_*, *, é*, file:///srv/*, \\xc3*)", prefixOnly)
	}
}
