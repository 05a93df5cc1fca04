package toolpolicy

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseRule(t *testing.T) {
	tests := []struct {
		line string
		want Rule
		err  string
	}{
		{"deny tools/call delete_*", Rule{Method: "tools/call", Name: "delete_*", Effect: Deny}, ""},
		{"allow tools/call read_* scopes_any read admin", Rule{Method: "tools/call", Name: "read_*", Effect: Allow,
			Require: Requirement{ScopesAny: []string{"read", "admin"}}}, ""},
		{"allow tools/call admin_* claim groups contains admins claim email suffix @example.com scopes_all a",
			Rule{Method: "tools/call", Name: "admin_*", Effect: Allow, Require: Requirement{ScopesAll: []string{"a"},
				Claims: []ClaimMatch{{Claim: "groups", Contains: "admins"}, {Claim: "email", Suffix: "@example.com"}}}}, ""},
		{"allow prompts/get * claim sub in alice bob claim org.id equals 42 claim email prefix dev.",
			Rule{Method: "prompts/get", Name: "*", Effect: Allow, Require: Requirement{Claims: []ClaimMatch{
				{Claim: "sub", In: []string{"alice", "bob"}}, {Claim: "org.id", Equals: "42"}, {Claim: "email", Prefix: "dev."}}}}, ""},
		{"allow tools/list scopes_all mcp:tools", Rule{Method: "tools/list", Effect: Allow, Require: Requirement{ScopesAll: []string{"mcp:tools"}}}, ""},
		{"allow resources/read file:///srv/*", Rule{Method: "resources/read", Name: "file:///srv/*", Effect: Allow}, ""},

		{"allow", Rule{}, "a rule is"},
		{"permit tools/call x", Rule{}, `starts with allow or deny, not "permit"`},
		{"allow tools/call", Rule{}, "the tool is missing"},
		{"allow tools/call scopes_all a", Rule{}, "the tool is missing"},
		{"allow tools/call x scopes_all", Rule{}, "scopes_all needs at least one scope"},
		{"allow tools/call x scopes_any claim g contains a", Rule{}, "scopes_any needs at least one scope"},
		{"allow tools/call x claim groups contains", Rule{}, "claim needs a path, a test and a value"},
		{"allow tools/call x claim groups in scopes_all a", Rule{}, "claim groups in needs at least one value"},
		{"allow tools/call x claim groups contains claim a b c", Rule{}, "claim groups contains needs a value"},
		{"allow tools/call x claim groups matches a", Rule{}, `unknown test "matches"`},
		{"allow tools/list extra", Rule{}, `unexpected "extra"`},
	}
	for _, tt := range tests {
		got, err := ParseRule(strings.Fields(tt.line))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err = %v, want %q", tt.line, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.line, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tt.line, got, tt.want)
		}
		if _, err := Compile(Config{Rules: []Rule{got}}); err != nil {
			t.Errorf("%q does not compile: %v", tt.line, err)
		}
	}
}
