package idp

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/testutil"
)

func TestPromptParameter(t *testing.T) {
	e := newEnv(t, nil)
	c := e.register(nil)
	cases := []struct {
		name   string
		signIn bool
		prompt string
		want   string // error code, "page" for the consent page, "code"
	}{
		{"none without session", false, "none", "login_required"},
		{"none without consent", true, "none", "consent_required"},
		{"consent forces page", true, "consent", "page"},
		{"none with consent", true, "none", "code"},
		{"bad combination", true, "none consent", "invalid_request"},
		{"unknown value", true, "bogus", "invalid_request"},
	}
	b := e.browser()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bb := e.browser()
			if tc.signIn {
				bb = b
				if tc.name == "none without consent" {
					// sign in without approving this client: use a second client for the login
					other := e.register(nil)
					e.getCode(bb, other, newPKCE(), "pat", "", nil)
				}
				if tc.name == "none with consent" {
					e.getCode(bb, c, newPKCE(), "pat", "", nil)
				}
			}
			pg := bb.follow(authorizeURL(e, c, newPKCE(), url.Values{"prompt": {tc.prompt}}))
			switch tc.want {
			case "page":
				if pg.status != 200 || !strings.Contains(pg.body, `value="approve"`) {
					t.Fatalf("want consent page, got %d", pg.status)
				}
			case "code":
				if !strings.Contains(pg.location, "code=") {
					t.Fatalf("want code, got %d %s", pg.status, pg.location)
				}
			default:
				u, _ := url.Parse(pg.location)
				if pg.status != http.StatusFound || u.Query().Get("error") != tc.want || u.Query().Get("iss") != e.issuer {
					t.Fatalf("want %s, got %d %s", tc.want, pg.status, pg.location)
				}
			}
		})
	}
}

func TestCORS(t *testing.T) {
	e := newEnv(t, nil)
	for _, p := range []string{"/token", "/register", "/revoke", "/.well-known/oauth-authorization-server"} {
		req, _ := http.NewRequest(http.MethodOptions, e.url(p), nil)
		req.Header.Set("Origin", "https://inspector.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s preflight: %d %v", p, resp.StatusCode, resp.Header)
		}
	}
	resp, _ := e.postForm("/token", url.Values{"grant_type": {"x"}, "client_id": {"nobody"}}, "", "")
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("token response lacks CORS")
	}
	// The browser pages are not CORS-enabled.
	pg := e.browser().get(e.url("/login"))
	if pg.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("login page has CORS")
	}
}

// Session cookies over https: __Host- prefix, Secure, HttpOnly, SameSite=Lax, Path=/.
func TestSessionCookieAttributes(t *testing.T) {
	for _, tc := range []struct {
		issuer string
		name   string
		secure bool
	}{
		{"https://idp.example.com", "__Host-mcpgate_idp_session", true},
		{"http://127.0.0.1:9000", "mcpgate_idp_session", false},
	} {
		srv, err := New(Options{Issuer: tc.issuer, DevLogin: true})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.issuer+"/login", nil))
		srv.Close()
		cookies := rec.Result().Cookies()
		if len(cookies) != 1 {
			t.Fatalf("%s: cookies %v", tc.issuer, cookies)
		}
		ck := cookies[0]
		if ck.Name != tc.name || ck.Secure != tc.secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" {
			t.Errorf("%s: cookie %+v", tc.issuer, ck)
		}
		csp := rec.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("login page CSP %q", csp)
		}
	}
}

func TestAccountPage(t *testing.T) {
	g := newFakeGitHub(t)
	g.accessTokens["ghp_pasted_123"] = true // a PAT GitHub accepts
	e := newEnv(t, func(o *Options) { o.GitHub.APIURL = g.ts.URL + "/api" })
	b := e.browser()
	// Not signed in: sent to login.
	if pg := b.get(e.url("/account")); pg.status != http.StatusFound || !strings.HasSuffix(pg.location, "/login") {
		t.Fatalf("account without session: %d %s", pg.status, pg.location)
	}
	pg := b.devLogin(b.follow(e.url("/login")), "acct", "")
	if pg.status != 200 || !strings.Contains(pg.body, "not linked") {
		t.Fatalf("account page: %d %s", pg.status, pg.body)
	}
	csrf := formValue(t, csrfRe, pg.body)
	if r := b.post(e.url("/account/github-token"), url.Values{"github_token": {"ghp_pasted_123"}}); r.status != 403 {
		t.Errorf("PAT without CSRF: %d", r.status)
	}
	if r := b.post(e.url("/account/github-token"), url.Values{"github_token": {"ghp_pasted_123"}, "csrf_token": {csrf}}); r.status != http.StatusSeeOther {
		t.Fatalf("PAT: %d %s", r.status, r.body)
	}
	if gt, err := e.srv.loadGitHubToken(context.Background(), "dev:acct"); err != nil || gt.AccessToken != "ghp_pasted_123" {
		t.Fatalf("PAT not stored: %v", err)
	}
	pg = b.get(e.url("/account"))
	if strings.Contains(pg.body, "ghp_pasted_123") || !strings.Contains(pg.body, "linked") {
		t.Errorf("account page after link (must not show the token): %s", pg.body)
	}
	if r := b.post(e.url("/account/unlink"), url.Values{"csrf_token": {csrf}}); r.status != http.StatusSeeOther {
		t.Fatalf("unlink: %d", r.status)
	}
	if _, err := e.srv.loadGitHubToken(context.Background(), "dev:acct"); err == nil {
		t.Errorf("token still stored after unlink")
	}
	if r := b.post(e.url("/logout"), url.Values{"csrf_token": {csrf}}); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	if pg := b.get(e.url("/account")); pg.status != http.StatusFound {
		t.Errorf("account after logout: %d", pg.status)
	}
}

// Expired records are removed by the background cleanup; Close stops it and is idempotent.
func TestCleanupAndClose(t *testing.T) {
	before := runtime.NumGoroutine()
	mem := NewMemoryStore()
	e := newEnv(t, func(o *Options) {
		o.CleanupInterval = 20 * time.Millisecond
		o.Store = mem
		o.EncryptionKey = make([]byte, 32)
	})
	c := e.register(nil)
	e.getCode(e.browser(), c, newPKCE(), "cleanme", "", nil)
	ctx := context.Background()
	if n, _ := mem.Count(ctx, bucketCodes); n != 1 {
		t.Fatalf("codes %d", n)
	}
	e.clock.Advance(31 * 24 * time.Hour)
	deadline := time.Now().Add(5 * time.Second)
	for {
		codes, _ := mem.Count(ctx, bucketCodes)
		sess, _ := mem.Count(ctx, bucketSessions)
		fams, _ := mem.Count(ctx, bucketFamilies)
		if codes == 0 && sess == 0 && fams == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not cleaned: codes %d sessions %d families %d", codes, sess, fams)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, _ := mem.Count(ctx, bucketClients); n != 1 {
		t.Errorf("cleanup removed a client")
	}
	e.ts.Close()
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()
	time.Sleep(50 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before+2 {
		t.Errorf("goroutines %d -> %d after Close", before, after)
	}
}

func TestNoSecretsInLogs(t *testing.T) {
	var logs testutil.SyncBuffer
	g := newFakeGitHub(t)
	e := newEnv(t, func(o *Options) {
		withGitHub(g)(o)
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	conf := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_post"})
	c := e.register(nil)
	p := newPKCE()
	q := e.githubLogin(e.browser(), c, p)
	_, tok := e.redeem(c, q.Get("code"), p.verifier, nil)
	e.clock.Advance(9 * time.Hour)
	_, tok2 := e.refresh(c, tok["refresh_token"].(string))
	_, x := e.exchangeAud(tok2["access_token"].(string), g.ts.URL+"/api") // refreshes at GitHub
	e.clock.Advance(20 * time.Second)
	e.refresh(c, tok["refresh_token"].(string)) // refresh reuse, logged
	e.redeem(c, q.Get("code"), p.verifier, nil) // code reuse, logged
	e.exchange("garbage", "gateway", "wrong-secret")
	secrets := []string{conf.Secret, conf.RAT, c.RAT, q.Get("code"), p.verifier, tok["access_token"].(string),
		tok["refresh_token"].(string), "gateway-secret-0123456789", "gh-secret", "ghu_access_", "ghr_refresh_"}
	if tok2["access_token"] != nil {
		secrets = append(secrets, tok2["access_token"].(string))
	}
	if x["access_token"] != nil {
		secrets = append(secrets, x["access_token"].(string))
	}
	out := logs.String()
	if !strings.Contains(out, "reused") {
		t.Fatalf("expected reuse log lines; logs:\n%s", out)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("secret %.12s... found in logs", s)
		}
	}
}

// An issuer with a path: routes live under it, RFC 8414 metadata uses path insertion.
func TestIssuerWithPath(t *testing.T) {
	srv, err := New(Options{Issuer: "https://host.example/idp", DevLogin: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, p := range []string{"/.well-known/oauth-authorization-server/idp", "/.well-known/openid-configuration/idp", "/idp/.well-known/openid-configuration"} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("GET", "https://host.example"+p, nil))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"token_endpoint":"https://host.example/idp/token"`) {
			t.Errorf("%s: %d %s", p, rec.Code, rec.Body.String())
		}
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "https://host.example/idp/jwks.json", nil))
	if rec.Code != 200 {
		t.Errorf("jwks under path: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "https://host.example/jwks.json", nil))
	if rec.Code != 404 {
		t.Errorf("jwks outside path: %d", rec.Code)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	cases := []struct {
		name string
		o    Options
	}{
		{"no issuer", Options{DevLogin: true}},
		{"trailing slash", Options{Issuer: "https://a.example/", DevLogin: true}},
		{"query", Options{Issuer: "https://a.example?x=1", DevLogin: true}},
		{"relative", Options{Issuer: "/idp", DevLogin: true}},
		{"no login method", Options{Issuer: "https://a.example"}},
		{"github without secret", Options{Issuer: "https://a.example", GitHub: GitHubConfig{ClientID: "x"}}},
		{"bad alg", Options{Issuer: "https://a.example", DevLogin: true, SigningAlgorithm: "HS256"}},
		{"store without key", Options{Issuer: "https://a.example", DevLogin: true, Store: NewMemoryStore()}},
		{"short key", Options{Issuer: "https://a.example", DevLogin: true, Store: NewMemoryStore(), EncryptionKey: []byte("short")}},
		{"exchange client without secret", Options{Issuer: "https://a.example", DevLogin: true, ExchangeClients: []ExchangeClient{{ID: "gateway", Audiences: []string{"https://mcp.example.com/mcp"}}}}},
	}
	for _, tc := range cases {
		if s, err := New(tc.o); err == nil {
			s.Close()
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

// An exchange client must name the resources it serves: without Audiences (formerly "any") or
// with one that is not a resource URI, New fails with an error naming the client.
func TestNewRequiresExchangeAudiences(t *testing.T) {
	for _, tc := range []struct {
		name      string
		audiences []string
		want      string
	}{
		{"none", nil, `ExchangeClient "gw-7" has no Audiences`},
		{"empty list", []string{}, `ExchangeClient "gw-7" has no Audiences`},
		{"not a URI", []string{"mcp.example.com"}, `ExchangeClient "gw-7": audience "mcp.example.com"`},
		{"fragment", []string{"https://mcp.example.com/mcp#x"}, `ExchangeClient "gw-7": audience`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(Options{Issuer: "https://a.example", DevLogin: true,
				ExchangeClients: []ExchangeClient{{ID: "gw-7", Secret: "gw-secret-0123456789", Audiences: tc.audiences}}})
			if err == nil {
				s.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "gw-secret") {
				t.Fatalf("error %q, want it to contain %q and not the secret", err, tc.want)
			}
		})
	}
	s, err := New(Options{Issuer: "https://a.example", DevLogin: true,
		ExchangeClients: []ExchangeClient{{ID: "gw-7", Secret: "gw-secret-0123456789", Audiences: []string{"https://MCP.example.com/mcp/"}}}})
	if err != nil {
		t.Fatalf("with an audience: %v", err)
	}
	s.Close()
}

// Signing out ends the user's grants at every client: their refresh tokens are refused, and
// so is their access token at token exchange; another user's grant is untouched.
func TestLogoutEndsGrants(t *testing.T) {
	e := newEnv(t, nil)
	c1 := e.register(map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}, "token_endpoint_auth_method": "none"})
	c2 := e.register(map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb2"}, "token_endpoint_auth_method": "none"})
	b := e.browser()
	var toks []map[string]any
	for _, c := range []testClient{c1, c2} {
		p := newPKCE()
		q := e.getCode(b, c, p, "carol", "", nil)
		resp, m := e.redeem(c, q.Get("code"), p.verifier, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("redeem: %d %v", resp.StatusCode, m)
		}
		toks = append(toks, m)
	}
	other := e.login(c1, "dave", "")

	pg := b.get(e.url("/account"))
	csrf := formValue(t, csrfRe, pg.body)
	if r := b.post(e.url("/logout"), url.Values{"csrf_token": {csrf}}); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	for i, c := range []testClient{c1, c2} {
		if resp, m := e.refresh(c, toks[i]["refresh_token"].(string)); resp.StatusCode != 400 || m["error"] != "invalid_grant" {
			t.Errorf("client %d: refresh after sign-out: %d %v, want invalid_grant", i+1, resp.StatusCode, m)
		}
	}
	// verifyAccessToken is what token exchange and introspection ask.
	if _, err := e.srv.verifyAccessToken(context.Background(), toks[1]["access_token"].(string)); err == nil {
		t.Error("carol's access token still verifies after sign-out")
	}
	if _, err := e.srv.verifyAccessToken(context.Background(), other["access_token"].(string)); err != nil {
		t.Errorf("dave's access token after carol signed out: %v", err)
	}
	if resp, m := e.refresh(c1, other["refresh_token"].(string)); resp.StatusCode != 200 {
		t.Errorf("another user's refresh after carol signed out: %d %v", resp.StatusCode, m)
	}
}
