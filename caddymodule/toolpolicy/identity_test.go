package toolpolicy

import (
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestIdentityScopes(t *testing.T) {
	def := mustCompile(t, Config{})
	keycloak := mustCompile(t, Config{ScopeClaim: "realm_access.roles"})
	tests := []struct {
		name    string
		p       *Policy
		payload string
		want    []string
		wantErr bool
	}{
		{"scope string", def, `{"scope":"a b  c"}`, []string{"a", "b", "c"}, false},
		{"scp array", def, `{"scp":["a","b c"]}`, []string{"a", "b", "c"}, false},
		{"scp string", def, `{"scp":"a b"}`, []string{"a", "b"}, false},
		{"scope wins over scp", def, `{"scope":"a","scp":["b"]}`, []string{"a"}, false},
		{"null scope falls back to scp", def, `{"scope":null,"scp":["b"]}`, []string{"b"}, false},
		{"no scopes", def, `{"sub":"u"}`, nil, false},
		{"scope number", def, `{"scope":5}`, nil, true},
		{"scp of numbers", def, `{"scp":[1]}`, nil, true},
		{"keycloak roles", keycloak, `{"scope":"openid","realm_access":{"roles":["admin","user"]}}`, []string{"admin", "user"}, false},
		{"keycloak roles absent", keycloak, `{"scope":"openid"}`, nil, false},
		{"keycloak realm_access not an object", keycloak, `{"realm_access":"x"}`, nil, false},
		{"not an object", def, `[1]`, nil, true},
		{"not JSON", def, `{"scope":`, nil, true},
		{"null", def, `null`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := tt.p.Identity([]byte(tt.payload))
			if tt.wantErr {
				if !errors.Is(err, ErrBadClaims) {
					t.Fatalf("err = %v, want ErrBadClaims", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(id.Scopes(), tt.want) {
				t.Errorf("scopes %q, want %q", id.Scopes(), tt.want)
			}
		})
	}
}

func TestIdentityFromJWT(t *testing.T) {
	p := mustCompile(t, Config{Rules: []Rule{{Method: "tools/call", Name: "x",
		Require: Requirement{Claims: []ClaimMatch{{Claim: "groups", Contains: "admins"}}}}}})
	enc := base64.RawURLEncoding.EncodeToString
	tok := enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(`{"scope":"a","groups":["admins"]}`)) + ".c2ln"
	id, err := p.IdentityFromJWT(tok)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(id.Scopes(), []string{"a"}) || !p.Allows(id, "tools/call", "x") {
		t.Errorf("scopes %q, allowed %v", id.Scopes(), p.Allows(id, "tools/call", "x"))
	}
	for _, bad := range []string{"", "abc", "a.!!!.c", "a." + enc([]byte("[]")) + ".c"} {
		if _, err := p.IdentityFromJWT(bad); !errors.Is(err, ErrBadClaims) {
			t.Errorf("IdentityFromJWT(%q) = %v, want ErrBadClaims", bad, err)
		}
	}
	// IdentityFromScopes: scopes only, so a claim rule cannot pass.
	if p.Allows(p.IdentityFromScopes([]string{"a"}), "tools/call", "x") {
		t.Error("a scopes-only identity passed a claim matcher")
	}
	// An Identity from another policy never satisfies a claim matcher.
	other := mustCompile(t, Config{})
	if p.Allows(mustIdentity(t, other, `{"groups":["admins"]}`), "tools/call", "x") {
		t.Error("an identity of another policy passed a claim matcher")
	}
}

func TestIdentityClaimShapes(t *testing.T) {
	p := mustCompile(t, Config{ScopeClaim: "a.b", Rules: []Rule{
		{Method: "tools/call", Name: "eq", Require: Requirement{Claims: []ClaimMatch{{Claim: "x", Equals: "v"}}}},
		{Method: "tools/call", Name: "deep", Require: Requirement{Claims: []ClaimMatch{{Claim: "a.c.d", Contains: "z"}}}},
	}})
	tests := []struct {
		payload  string
		eq, deep bool
		scopes   string
	}{
		{`{"x":"v","a":{"b":"s1 s2","c":{"d":["y","z"]}}}`, true, true, "s1 s2"},
		{`{"x":"w","x":"v"}`, true, false, ""},                          // the last duplicate counts
		{`{"\u0078":"v","a":{"b":["s"]}}`, true, false, "s"},            // escaped key
		{`{"X":"v"}`, false, false, ""},                                 // claim names are exact
		{`{"x":["v"]}`, false, false, ""},                               // equals wants a single value
		{`{"x":{"v":1},"a":{"c":{"d":"z"}}}`, false, true, ""},          // object: nothing; a single string contains
		{`{"x":null,"a":{"c":{"d":[1,"z",{"z":1}]}}}`, false, true, ""}, // mixed arrays: the scalars count
		{`{"a":{"b":null},"a":{"c":{"d":["z"]}}}`, false, true, ""},
	}
	for _, tt := range tests {
		id := mustIdentity(t, p, tt.payload)
		if p.Allows(id, "tools/call", "eq") != tt.eq || p.Allows(id, "tools/call", "deep") != tt.deep ||
			strings.Join(id.Scopes(), " ") != tt.scopes {
			t.Errorf("%s: eq %v deep %v scopes %q", tt.payload, p.Allows(id, "tools/call", "eq"),
				p.Allows(id, "tools/call", "deep"), id.Scopes())
		}
	}
	for _, bad := range []string{`{"a":{"b":5}}`, `{"a":{"b":[1]}}`, `{"x":"v"} x`, `{"x":"v",}`} {
		if _, err := p.Identity([]byte(bad)); !errors.Is(err, ErrBadClaims) {
			t.Errorf("Identity(%s) = %v, want ErrBadClaims", bad, err)
		}
	}
}
