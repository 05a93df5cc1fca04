package main

import (
	"encoding/json"
	"testing"

	"github.com/mcpgate/mcpgate/caddymodule/toolpolicy"
)

// TestBenchPolicy checks the shape issue 17 asks for: 20 rules that load,
// default allow, the request's tool decided by the last rule and the
// denied tool of checkPolicyActive refused.
func TestBenchPolicy(t *testing.T) {
	cfg := benchPolicy()
	if len(cfg.Rules) != policyRules || cfg.Default != "allow" {
		t.Fatalf("%d rules, default %q", len(cfg.Rules), cfg.Default)
	}
	// Through JSON, as Caddy loads it.
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var loaded toolpolicy.Config
	if err := json.Unmarshal(b, &loaded); err != nil {
		t.Fatal(err)
	}
	p, err := toolpolicy.Compile(loaded)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	benchScopes := p.IdentityFromScopes([]string{"mcp:tools", "github:repo"})
	noScopes := p.IdentityFromScopes([]string{"github:repo"})
	tests := []struct {
		id   *toolpolicy.Identity
		name string
		want bool
	}{
		{benchScopes, "get_me", true},
		{noScopes, "get_me", false}, // a rule, not the default, decides it
		{benchScopes, "delete_repository", false},
		{benchScopes, "delete_branch", false},
		{benchScopes, "unnamed_tool", true}, // default allow
	}
	for _, tt := range tests {
		if got := p.Allows(tt.id, "tools/call", tt.name); got != tt.want {
			t.Errorf("%s: allowed %v, want %v", tt.name, got, tt.want)
		}
	}

	// Without the last rule, get_me falls to the default: the last rule is
	// the one that decides it.
	loaded.Rules = loaded.Rules[:len(loaded.Rules)-1]
	p, err = toolpolicy.Compile(loaded)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Allows(p.IdentityFromScopes([]string{"github:repo"}), "tools/call", "get_me") {
		t.Error("get_me refused without the last rule: an earlier rule matches it")
	}
}
