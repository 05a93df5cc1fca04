package idp

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"golang.org/x/oauth2"
)

// Interop: golang.org/x/oauth2 with its PKCE helpers drives the flow, including a refresh.
func TestInteropXOAuth2(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		style  oauth2.AuthStyle
	}{
		{"public", "none", oauth2.AuthStyleInParams},
		{"confidential basic", "client_secret_basic", oauth2.AuthStyleInHeader},
		{"confidential post", "client_secret_post", oauth2.AuthStyleInParams},
		{"autodetect", "client_secret_basic", oauth2.AuthStyleAutoDetect},
	} {
		t.Run(tc.name, func(t *testing.T) { testInteropXOAuth2(t, tc.method, tc.style) })
	}
}

func testInteropXOAuth2(t *testing.T, method string, style oauth2.AuthStyle) {
	e := newEnv(t, nil)
	c := e.register(map[string]any{"redirect_uris": []string{"http://127.0.0.1/callback"}, "token_endpoint_auth_method": method})
	cfg := oauth2.Config{
		ClientID:     c.ID,
		ClientSecret: c.Secret,
		Endpoint:     oauth2.Endpoint{AuthURL: e.url("/authorize"), TokenURL: e.url("/token"), AuthStyle: style},
		RedirectURL:  "http://127.0.0.1:61234/callback",
		Scopes:       []string{"mcp"},
	}
	verifier := oauth2.GenerateVerifier()
	authURL := cfg.AuthCodeURL("xo-state", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", "https://mcp.example.com/mcp"))
	b := e.browser()
	pg := b.devLogin(b.follow(authURL), "xo", "")
	pg = b.approve(pg)
	u, _ := url.Parse(pg.location)
	if u.Query().Get("state") != "xo-state" || u.Query().Get("iss") != e.issuer {
		t.Fatalf("callback %s", pg.location)
	}
	ctx := context.Background()
	tok, err := cfg.Exchange(ctx, u.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	claims, _ := verifyWithJWKS(t, e, tok.AccessToken)
	if claims["sub"] != "dev:xo" {
		t.Errorf("sub %v", claims["sub"])
	}
	// Force a refresh through the library's TokenSource.
	tok.Expiry = time.Now().Add(-time.Minute)
	nt, err := cfg.TokenSource(ctx, tok).Token()
	if err != nil {
		t.Fatalf("refresh via TokenSource: %v", err)
	}
	if nt.AccessToken == tok.AccessToken || nt.RefreshToken == tok.RefreshToken || nt.RefreshToken == "" {
		t.Errorf("refresh did not rotate")
	}
	// A wrong verifier is refused by the library-visible error.
	verifier2 := oauth2.GenerateVerifier()
	pg = b.follow(cfg.AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier2)))
	u, _ = url.Parse(pg.location)
	if _, err := cfg.Exchange(ctx, u.Query().Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("wrong verifier: %v", err)
	}
}

// Interop: mcp-go's OAuth client discovers (via protected resource metadata), registers
// dynamically, authorizes with PKCE and exchanges the code.
func TestInteropMCPGo(t *testing.T) {
	e := newEnv(t, nil)
	var prm *httptest.Server
	prm = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/.well-known/oauth-protected-resource") {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"resource": prm.URL + "/mcp", "authorization_servers": []string{e.issuer},
			"scopes_supported": []string{"mcp"}, "bearer_methods_supported": []string{"header"},
		})
	}))
	defer prm.Close()

	store := transport.NewMemoryTokenStore()
	h := transport.NewOAuthHandler(transport.OAuthConfig{
		RedirectURI: "http://127.0.0.1:47001/oauth/callback",
		Scopes:      []string{"mcp"},
		PKCEEnabled: true,
		TokenStore:  store,
	})
	h.SetBaseURL(prm.URL + "/mcp")
	ctx := context.Background()
	if err := h.RegisterClient(ctx, "mcp-go interop"); err != nil {
		t.Fatalf("RegisterClient: %v", err)
	}
	if h.GetClientID() == "" {
		t.Fatal("no client id after registration")
	}
	verifier, _ := transport.GenerateCodeVerifier()
	state, _ := transport.GenerateState()
	authURL, err := h.GetAuthorizationURL(ctx, state, transport.GenerateCodeChallenge(verifier))
	if err != nil {
		t.Fatalf("GetAuthorizationURL: %v", err)
	}
	b := e.browser()
	pg := b.devLogin(b.follow(authURL), "mcpgo", "")
	pg = b.approve(pg)
	u, _ := url.Parse(pg.location)
	if u.Query().Get("iss") != e.issuer {
		t.Errorf("no iss in callback")
	}
	if err := h.ProcessAuthorizationResponse(ctx, u.Query().Get("code"), u.Query().Get("state"), verifier); err != nil {
		t.Fatalf("ProcessAuthorizationResponse: %v", err)
	}
	hdr, err := h.GetAuthorizationHeader(ctx)
	if err != nil || !strings.HasPrefix(hdr, "Bearer ") {
		t.Fatalf("GetAuthorizationHeader: %q %v", hdr, err)
	}
	claims, _ := verifyWithJWKS(t, e, strings.TrimPrefix(hdr, "Bearer "))
	aud, _ := claims.GetAudience()
	if claims["sub"] != "dev:mcpgo" || !slices.Contains(aud, prm.URL+"/mcp") || claims["client_id"] != h.GetClientID() {
		t.Errorf("claims %v", claims)
	}
	// mcp-go's refresh path (sends resource) works with rotation.
	old, err := store.GetToken(ctx)
	if err != nil || old.RefreshToken == "" {
		t.Fatalf("stored token: %v", err)
	}
	nt, err := h.RefreshToken(ctx, old.RefreshToken)
	if err != nil || nt.AccessToken == old.AccessToken || nt.RefreshToken == old.RefreshToken {
		t.Fatalf("mcp-go refresh: %v", err)
	}
}
