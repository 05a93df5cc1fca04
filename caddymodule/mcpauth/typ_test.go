package mcpauth

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"
)

// provisionOnly provisions h and returns Provision's error, cleaning up after.
func provisionOnly(t *testing.T, h *Handler) error {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	err := h.Provision(ctx)
	t.Cleanup(func() { _ = h.Cleanup() })
	return err
}

// TestAccessTokenTypesPerIssuer: RFC 9068 §4 by default (a token typed JWT or untyped is
// refused, and the log says it was the typ), and access_token_types for an issuer whose
// access tokens are typed otherwise (Keycloak, Auth0 without its RFC 9068 profile).
func TestAccessTokenTypesPerIssuer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		types  []string
		typ    any // nil: no typ header
		status int
		detail string
	}{
		{"default at+jwt", nil, "at+jwt", 200, ""},
		{"default JWT", nil, "JWT", 401, `typ "JWT" is not an accepted access token type`},
		{"default untyped", nil, nil, 401, "typ header is absent"},
		{"JWT allowed", []string{"JWT"}, "JWT", 200, ""},
		{"JWT allowed, untyped refused", []string{"JWT"}, nil, 401, "typ header is absent"},
		{"absent allowed", []string{"JWT", "absent"}, nil, 200, ""},
		{"id token never", []string{"JWT", "absent"}, "id+jwt", 401, `typ "id+jwt"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, func(h *Handler, _ *testEnv) { h.Issuers[0].AccessTokenTypes = tc.types })
			hdr := env.header()
			delete(hdr, "typ")
			if tc.typ != nil {
				hdr["typ"] = tc.typ
			}
			tok := signJWT(t, hdr, env.claims("github:1"), jwt.SigningMethodRS256, env.issuer.key)
			w := env.do(bearerRequest(http.MethodPost, "/mcp", tok))
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.status == 200 {
				return
			}
			entries := env.logs.FilterMessage("request rejected").All()
			if len(entries) != 1 {
				t.Fatalf("%d rejection log entries, want 1", len(entries))
			}
			f := entries[0].ContextMap()
			if f["reason"] != "type" || !strings.Contains(f["detail"].(string), tc.detail) {
				t.Errorf("log reason %v detail %v, want type / %q", f["reason"], f["detail"], tc.detail)
			}
		})
	}
	// A type that marks another kind of token is refused at load.
	h := &Handler{Resource: testResource, Issuers: []IssuerConfig{{Issuer: "https://a.example", AccessTokenTypes: []string{"logout+jwt"}}}}
	if err := provisionOnly(t, h); err == nil || !strings.Contains(err.Error(), "logout+jwt") {
		t.Errorf("Provision with logout+jwt: %v", err)
	}
}

// TestNoScopeClaim: a token without any scope claim gets a 403 that says so, not a bare
// insufficient_scope; one whose scope claim lacks the scope gets the usual answer.
func TestNoScopeClaim(t *testing.T) {
	env := newTestEnv(t, nil)
	for _, tc := range []struct {
		name   string
		edit   func(map[string]any)
		reason string
		desc   string
	}{
		{"no scope claim", func(c map[string]any) { delete(c, "scope"); delete(c, "scp") }, "no_scope_claim", "the token has no scope claim"},
		{"empty scope", func(c map[string]any) { c["scope"] = "" }, "insufficient_scope", "the token lacks a required scope"},
		{"other scope", func(c map[string]any) { c["scope"] = "other" }, "insufficient_scope", "the token lacks a required scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := env.claims("github:1")
			tc.edit(c)
			w := env.do(bearerRequest(http.MethodPost, "/mcp", env.token(c)))
			if w.Code != http.StatusForbidden || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="insufficient_scope"`) {
				t.Fatalf("status %d challenge %q", w.Code, w.Header().Get("WWW-Authenticate"))
			}
			var body errorBody
			_ = json.Unmarshal(w.Body.Bytes(), &body)
			if body.Error != "insufficient_scope" || !strings.HasPrefix(body.ErrorDescription, tc.desc) {
				t.Errorf("body %+v, want description %q", body, tc.desc)
			}
			all := env.logs.FilterMessage("request rejected").All()
			if got := all[len(all)-1].ContextMap()["reason"]; got != tc.reason {
				t.Errorf("log reason %v, want %s", got, tc.reason)
			}
		})
	}
}

// TestAudienceDescription: a token for another resource gets a description that names the
// audience, so a client can tell the user the authorization server ignored its resource.
func TestAudienceDescription(t *testing.T) {
	env := newTestEnv(t, nil)
	c := env.claims("github:1")
	c["aud"] = "https://other.example/mcp"
	w := env.do(bearerRequest(http.MethodPost, "/mcp", env.token(c)))
	var body errorBody
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != 401 || body.ErrorDescription != "the access token's audience is not this resource" {
		t.Fatalf("status %d body %+v", w.Code, body)
	}
	all := env.logs.FilterMessage("request rejected").All()
	if f := all[len(all)-1].ContextMap(); f["reason"] != "audience" || f["detail"] == nil {
		t.Errorf("log fields %v, want reason audience with a detail", f)
	}
}
