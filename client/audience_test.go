package client

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/client/internal/oauthtest"
)

func TestTokenAudience(t *testing.T) {
	jwt := func(claims string) string {
		return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"at+jwt"}`)) + "." +
			base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".c2ln"
	}
	tests := []struct {
		name  string
		tok   string
		aud   []string
		isJWT bool
	}{
		{"aud string", jwt(`{"aud":"https://api.example/"}`), []string{"https://api.example/"}, true},
		{"aud array", jwt(`{"aud":["a","https://mcp.example/mcp"]}`), []string{"a", "https://mcp.example/mcp"}, true},
		{"no aud", jwt(`{"sub":"x"}`), nil, true},
		{"empty aud", jwt(`{"aud":""}`), nil, true},
		{"aud number", jwt(`{"aud":7}`), nil, true},
		{"padded payload", strings.Replace(jwt(`{"aud":"ab"}`), ".c2ln", "", 1) + "==.c2ln", []string{"ab"}, true},
		{"opaque", "at-Zm9vYmFy", nil, false},
		{"two dots, not base64", "a.b!c.d", nil, false},
		{"payload not JSON", "eyJ9.bm90IGpzb24.c2ln", nil, false},
		{"JWE, five parts", "a.b.c.d.e", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			aud, isJWT := tokenAudience(tc.tok)
			if isJWT != tc.isJWT || !reflect.DeepEqual(aud, tc.aud) {
				t.Fatalf("tokenAudience = %q, %v; want %q, %v", aud, isJWT, tc.aud, tc.isJWT)
			}
		})
	}
}

// TestFreshTokenRefusedAudience: an authorization server that ignores the resource parameter
// issues tokens the MCP server refuses for their audience; the client says so, with the
// audience the token had and the one the server wants, and never prints the token.
func TestFreshTokenRefusedAudience(t *testing.T) {
	const foreign = "https://idp.example/default-api"
	tests := []struct {
		name string
		ao   oauthtest.ASOptions
		want func(e *env) string
	}{
		{"JWT with a foreign aud", oauthtest.ASOptions{JWTAccessTokens: true, IgnoreResource: foreign}, func(e *env) string {
			return "the MCP server at " + e.res.URL + " refuses the token " + e.as.Issuer + " just issued because of its audience: " +
				`the token is for "` + foreign + `", the server wants "` + e.res.URL + `" (the resource of its protected resource metadata); ` +
				"the authorization server ignored the resource parameter (RFC 8707), configure it to issue tokens with that audience " +
				"(server said: invalid_token: " + oauthtest.AudienceDescription + ")"
		}},
		{"opaque token, audience named by the server", oauthtest.ASOptions{IgnoreResource: foreign}, func(e *env) string {
			return "refuses the token " + e.as.Issuer + " just issued because of its audience (the token is opaque, so its audience " +
				`cannot be read here); the server wants "` + e.res.URL + `"`
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.ao, oauthtest.ResourceOptions{})
			c, errOut := e.client(t, nil)
			_, err := c.Tools(ctxT(t))
			mustContain(t, err, tc.want(e))
			// The first login, then (refresh refused too) exactly one more before giving up.
			if n := len(e.as.Authorizes()); n != 2 {
				t.Fatalf("%d logins, want 2", n)
			}
			// A JWT's header always starts with eyJ ({"); opaque ones with at-.
			for _, out := range []string{err.Error(), errOut.String()} {
				if strings.Contains(out, "eyJ") || strings.Contains(out, "at-") {
					t.Fatalf("the token leaked: %q", out)
				}
			}
		})
	}
}

// TestFreshTokenRefusedNoAud: a JWT without aud is named as such.
func TestFreshTokenRefusedNoAud(t *testing.T) {
	c := &Client{cfg: Config{MCPURL: "https://mcp.example/mcp"}}
	claims, _ := json.Marshal(map[string]any{"sub": "x"})
	tok := "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(claims) + ".c2ln"
	err := c.freshTokenRefused(tok, "https://as.example", "https://mcp.example/mcp", "invalid_token")
	mustContain(t, err, `refuses the token https://as.example just issued, which names no audience (aud); the server wants "https://mcp.example/mcp"`)
	// A token for this very resource refused for another reason keeps the trust message.
	claims, _ = json.Marshal(map[string]any{"aud": "HTTPS://MCP.example:443/mcp"})
	tok = "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(claims) + ".c2ln"
	err = c.freshTokenRefused(tok, "https://as.example", "https://mcp.example/mcp", "")
	mustContain(t, err, "just issued (no reason given); the server may not trust that issuer or its keys")
}
