package idp

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
)

// TestUpstreamZitadelExampleOP signs a user in through an OpenID provider this project did not
// write: zitadel/oidc's example OP (github.com/zitadel/oidc/v3/example/server/exampleop), run
// in-process. The browser is a Go HTTP client with a cookie jar that fills in the OP's login form.
// The MCP client then gets our access token, and /userinfo shows the mapped identity.
func TestUpstreamZitadelExampleOP(t *testing.T) {
	zts := httptest.NewUnstartedServer(nil)
	zIssuer := "http://" + zts.Listener.Addr().String()
	st := storage.NewStorage(storage.NewUserStore(zIssuer))
	zts.Config.Handler = exampleop.SetupServer(zIssuer, st, nil, false)

	e := newEnv(t, func(o *Options) {
		o.DevLogin = false
		o.Upstreams = []UpstreamOIDC{{
			Name: "zitadel", DisplayName: "Zitadel example", Issuer: zIssuer,
			ClientID: "mcpgate-web", ClientSecret: "mcpgate-web-secret",
			AllowedEmailDomains: []string{"zitadel.ch"}, TokenClaims: []string{"email"},
		}}
	})
	// The example storage keeps its clients in a package variable; register ours with the
	// callback URL of this test's issuer before the OP serves anything.
	storage.RegisterClients(storage.WebClient("mcpgate-web", "mcpgate-web-secret", e.url("/oidc/zitadel/callback")))
	zts.Start()
	t.Cleanup(zts.Close)

	c := e.register(nil)
	p := newPKCE()
	b := e.browser()
	pg := b.followAll(authorizeURL(e, c, p, nil), c.RedirectURI)
	if pg.status != http.StatusOK || !strings.Contains(pg.body, `name="password"`) {
		t.Fatalf("want the OP's login form, got %d %s", pg.status, pg.body)
	}
	id := formValue(t, regexp.MustCompile(`name="id" value="([^"]+)"`), pg.body)
	host := strings.Split(strings.Split(zIssuer, "://")[1], ":")[0]
	pg = b.post(zIssuer+"/login/username", url.Values{"id": {id}, "username": {"test-user@" + host}, "password": {"verysecure"}})
	for i := 0; i < 10 && pg.location != "" && !strings.HasPrefix(pg.location, c.RedirectURI); i++ {
		pg = b.get(pg.location)
	}
	if strings.Contains(pg.body, `value="approve"`) {
		pg = b.approve(pg)
	}
	if pg.status != http.StatusFound || !strings.HasPrefix(pg.location, c.RedirectURI) {
		t.Fatalf("want redirect to the MCP client, got %d %s", pg.status, pg.body)
	}
	loc, _ := url.Parse(pg.location)
	resp, tok := e.redeem(c, loc.Query().Get("code"), p.verifier, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("redeem: %d %v", resp.StatusCode, tok)
	}
	wantSub := oidcSubject(zIssuer, "id1") // the example user's subject at the OP
	parts := strings.Split(tok["access_token"].(string), ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	_ = json.Unmarshal(raw, &claims)
	if claims["sub"] != wantSub || claims["email"] != "test-user@zitadel.ch" {
		t.Fatalf("access token claims: %v", claims)
	}
	req, _ := http.NewRequest(http.MethodGet, e.url("/userinfo"), nil)
	req.Header.Set("Authorization", "Bearer "+tok["access_token"].(string))
	_, ui := doJSON(t, req)
	if ui["sub"] != wantSub || ui["email"] != "test-user@zitadel.ch" || ui["name"] != "Test User" {
		t.Fatalf("userinfo: %v", ui)
	}
}
