package idp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Redirect URI errors (unregistered or altered, loopback port rules, none given with several
// registered) are pages, never redirects.
func TestAuthorizeRedirectURIMatching(t *testing.T) {
	e := newEnv(t, nil)
	web := e.register(map[string]any{"redirect_uris": []string{"https://app.example.com/cb", "https://app.example.com:8443/other"}})
	loop := e.register(map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"}})
	single := e.register(map[string]any{"redirect_uris": []string{"https://one.example.com/cb"}})
	p := newPKCE()
	cases := []struct {
		name     string
		c        testClient
		redirect string // "-" = omit
		ok       bool
	}{
		{"exact", web, "https://app.example.com/cb", true},
		{"query added", web, "https://app.example.com/cb?x=1", false},
		{"path case", web, "https://app.example.com/CB", false},
		{"trailing slash", web, "https://app.example.com/cb/", false},
		{"dot dot", web, "https://app.example.com/x/../cb", false},
		{"other port non-loopback", web, "https://app.example.com:444/cb", false},
		{"unregistered", web, "https://evil.example/cb", false},
		{"no redirect several registered", web, "-", false},
		{"no redirect one registered", single, "-", true},
		{"loopback any port", loop, "http://127.0.0.1:53111/cb", true},
		{"loopback no port", loop, "http://127.0.0.1/cb", true},
		{"loopback other path", loop, "http://127.0.0.1:53111/cb2", false},
		{"loopback query", loop, "http://127.0.0.1:53111/cb?x=1", false},
		{"loopback https", loop, "https://127.0.0.1:53111/cb", false},
		{"loopback localhost", loop, "http://localhost:53111/cb", false},
		{"loopback ::1", loop, "http://[::1]:53111/cb", false},
		{"loopback userinfo", loop, "http://x@127.0.0.1:53111/cb", false},
		{"loopback fragment", loop, "http://127.0.0.1:53111/cb#f", false},
		{"unknown client", testClient{ID: "nope"}, "https://app.example.com/cb", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			extra := url.Values{"redirect_uri": {tc.redirect}}
			if tc.redirect == "-" {
				extra = url.Values{"redirect_uri": nil}
			}
			pg := e.browser().get(authorizeURL(e, tc.c, p, extra))
			if tc.ok {
				if pg.status != http.StatusFound || !strings.HasPrefix(pg.location, e.issuer+"/consent") {
					t.Fatalf("want continue to consent, got %d %s %s", pg.status, pg.location, pg.body)
				}
				return
			}
			if pg.status != http.StatusBadRequest || pg.location != "" {
				t.Fatalf("want 400 error page without redirect, got %d location=%q", pg.status, pg.location)
			}
			if !strings.Contains(pg.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Errorf("error page lacks frame-ancestors 'none'")
			}
		})
	}
}

// PKCE and response_type errors: after the redirect URI is trusted, errors are redirected with state and iss.
func TestAuthorizeRedirectedErrors(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.AllowedResources = []string{"https://other.example.com/mcp"}
	})
	c := e.register(nil)
	p := newPKCE()
	cases := []struct {
		name  string
		extra url.Values
		err   string
	}{
		{"pkce missing", url.Values{"code_challenge": nil, "code_challenge_method": nil}, "invalid_request"},
		{"pkce challenge missing", url.Values{"code_challenge": nil}, "invalid_request"},
		{"pkce plain", url.Values{"code_challenge_method": {"plain"}}, "invalid_request"},
		{"pkce method missing", url.Values{"code_challenge_method": nil}, "invalid_request"},
		{"pkce unknown method", url.Values{"code_challenge_method": {"S512"}}, "invalid_request"},
		{"pkce malformed challenge", url.Values{"code_challenge": {"short"}}, "invalid_request"},
		{"response_type token", url.Values{"response_type": {"token"}}, "unsupported_response_type"},
		{"response_type id_token", url.Values{"response_type": {"code id_token"}}, "unsupported_response_type"},
		{"response_type missing", url.Values{"response_type": nil}, "invalid_request"},
		{"repeated parameter", url.Values{"scope": {"mcp", "mcp"}}, "invalid_request"},
		{"unknown scope", url.Values{"scope": {"admin"}}, "invalid_scope"},
		{"resource not allowed", url.Values{"resource": {"https://evil.example/mcp"}}, "invalid_target"},
		{"resource with fragment", url.Values{"resource": {"https://mcp.example.com/mcp#x"}}, "invalid_target"},
		{"two resources", url.Values{"resource": {"https://mcp.example.com/mcp", "https://other.example.com/mcp"}}, "invalid_target"},
		{"response_mode fragment", url.Values{"response_mode": {"fragment"}}, "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pg := e.browser().get(authorizeURL(e, c, p, tc.extra))
			if pg.status != http.StatusFound {
				t.Fatalf("want redirect, got %d %s", pg.status, pg.body)
			}
			u, _ := url.Parse(pg.location)
			q := u.Query()
			if !strings.HasPrefix(pg.location, c.RedirectURI) || q.Get("error") != tc.err || q.Get("state") != "st-123" || q.Get("iss") != e.issuer || q.Get("code") != "" {
				t.Fatalf("redirect %s: want error=%s with state and iss", pg.location, tc.err)
			}
		})
	}
}

// Consent per new client, CSRF, frame-ancestors, GitHub state checks (the latter
// in github_test.go).
func TestConsentAndCSRF(t *testing.T) {
	e := newEnv(t, nil)
	c1 := e.register(map[string]any{"client_name": "First"})
	b := e.browser()
	e.getCode(b, c1, newPKCE(), "bob", "", nil) // signs in and approves c1

	// A newly registered client for the same signed-in user: consent shown again.
	c2 := e.register(map[string]any{"client_name": "Second"})
	pg := b.follow(authorizeURL(e, c2, newPKCE(), nil))
	if pg.status != 200 || !strings.Contains(pg.body, "Authorize Second?") || !strings.Contains(pg.body, "127.0.0.1") {
		t.Fatalf("want consent page for the new client, got %d %s", pg.status, pg.body)
	}
	for _, h := range []string{"Content-Security-Policy"} {
		if !strings.Contains(pg.header.Get(h), "frame-ancestors 'none'") {
			t.Errorf("consent page %s = %q", h, pg.header.Get(h))
		}
	}
	if pg.header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("X-Frame-Options %q", pg.header.Get("X-Frame-Options"))
	}
	reqID := formValue(t, reqRe, pg.body)
	csrf := formValue(t, csrfRe, pg.body)
	wrong := "x" + csrf[1:]
	if csrf[0] == 'x' { // a random token starts with x one time in 64
		wrong = "y" + csrf[1:]
	}
	cases := []struct {
		name   string
		form   url.Values
		status int
	}{
		{"no csrf", url.Values{"req": {reqID}, "action": {"approve"}}, 403},
		{"wrong csrf", url.Values{"req": {reqID}, "action": {"approve"}, "csrf_token": {wrong}}, 403},
		{"other browser's csrf", url.Values{"req": {reqID}, "action": {"approve"}, "csrf_token": {csrf}}, 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bb := b
			if tc.name == "other browser's csrf" {
				bb = e.browser()
			}
			r := bb.post(e.url("/consent"), tc.form)
			if r.status != tc.status || r.location != "" {
				t.Fatalf("status %d location %q, want %d and no redirect", r.status, r.location, tc.status)
			}
		})
	}
	// The dev login form also needs the CSRF token.
	r := e.browser().post(e.url("/login"), url.Values{"username": {"mallory"}})
	if r.status != 403 {
		t.Errorf("login without CSRF: %d", r.status)
	}
	// With the right token the request still completes once.
	r = b.post(e.url("/consent"), url.Values{"req": {reqID}, "action": {"approve"}, "csrf_token": {csrf}})
	if r.status != http.StatusFound || !strings.Contains(r.location, "code=") {
		t.Fatalf("approve: %d %s", r.status, r.location)
	}
	r = b.post(e.url("/consent"), url.Values{"req": {reqID}, "action": {"approve"}, "csrf_token": {csrf}})
	if r.status != http.StatusBadRequest {
		t.Errorf("second approve of the same request: %d", r.status)
	}

	// Deny redirects access_denied with state and iss.
	c3 := e.register(map[string]any{"client_name": "Third"})
	pg = b.follow(authorizeURL(e, c3, newPKCE(), nil))
	r = b.post(e.url("/consent"), url.Values{"req": {formValue(t, reqRe, pg.body)}, "action": {"deny"}, "csrf_token": {formValue(t, csrfRe, pg.body)}})
	u, _ := url.Parse(r.location)
	if r.status != http.StatusFound || u.Query().Get("error") != "access_denied" || u.Query().Get("state") != "st-123" || u.Query().Get("iss") != e.issuer {
		t.Errorf("deny: %d %s", r.status, r.location)
	}
}

// Reflected parameters are escaped.
func TestPagesEscapeReflectedInput(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Scopes = []string{"mcp", `"><script>alert(3)</script>`} })
	evil := `"><script>alert(1)</script>`
	c := e.register(map[string]any{"client_name": evil, "scope": `mcp "><script>alert(3)</script>`})
	b := e.browser()
	pg := b.follow(authorizeURL(e, c, newPKCE(), url.Values{"state": {evil}}))
	pg = b.devLogin(pg, "eve", "")
	if pg.status != 200 {
		t.Fatalf("consent: %d %s", pg.status, pg.body)
	}
	if strings.Contains(pg.body, "<script>") {
		t.Fatalf("unescaped script in page:\n%s", pg.body)
	}
	if !strings.Contains(pg.body, "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("client name not shown escaped:\n%s", pg.body)
	}
	// The hostile state is never rendered in HTML, but must round-trip exactly, URL-encoded, in the
	// redirect back to the client.
	r := b.approve(pg)
	loc, err := url.Parse(r.location)
	if r.status != http.StatusFound || err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("approve: %d %q", r.status, r.location)
	}
	if got := loc.Query().Get("state"); got != evil {
		t.Errorf("state round-trip: got %q, want %q", got, evil)
	}
	if raw := r.location; strings.ContainsAny(raw, `"<> `) {
		t.Errorf("Location carries the state unencoded: %q", raw)
	}

	// The login form with hostile input, posted with this browser's own CSRF token, is refused
	// with 400 and shows the error without reflecting markup.
	for _, tc := range []struct {
		name string
		form url.Values
	}{
		{"hostile username", url.Values{"username": {evil}}},
		{"hostile username, img", url.Values{"username": {`<img src=x onerror=alert(2)>`}}},
		{"hostile token (invalid: has a space)", url.Values{"username": {"eve2"}, "github_token": {"ghp_x\"><script>alert(4)</script> x"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb := e.browser()
			lp := lb.follow(authorizeURL(e, c, newPKCE(), nil))
			tc.form.Set("csrf_token", formValue(t, csrfRe, lp.body))
			tc.form.Set("req", formValue(t, reqRe, lp.body))
			r := lb.post(e.url("/login"), tc.form)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400 (the form must get past the CSRF check):\n%s", r.status, r.body)
			}
			if strings.Contains(r.body, "<script>") || strings.Contains(r.body, "<img") {
				t.Errorf("login error page reflects markup:\n%s", r.body)
			}
			if !strings.Contains(r.body, `name="csrf_token"`) {
				t.Errorf("not the login form with an error:\n%s", r.body)
			}
		})
	}
}

// X-Forwarded-Host and -Proto never change the issuer or any metadata URL.
func TestMetadataIgnoresForwardedHeaders(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		req, _ := http.NewRequest(http.MethodGet, e.url(path), nil)
		req.Header.Set("X-Forwarded-Host", "evil.example")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("Forwarded", "host=evil.example;proto=https")
		req.Host = "evil.example"
		resp, m := doJSON(t, req)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		if m["issuer"] != e.issuer {
			t.Errorf("issuer %v", m["issuer"])
		}
		for k, v := range m {
			if s, ok := v.(string); ok && strings.Contains(s, "evil") {
				t.Errorf("%s: %s = %s", path, k, s)
			}
			if strings.HasSuffix(k, "_endpoint") || k == "jwks_uri" {
				if !strings.HasPrefix(v.(string), e.issuer+"/") {
					t.Errorf("%s = %v not under the issuer", k, v)
				}
			}
		}
		want := map[string]any{
			"authorization_response_iss_parameter_supported": true,
			"client_id_metadata_document_supported":          true,
		}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s = %v", k, m[k])
			}
		}
		if ccm := m["code_challenge_methods_supported"].([]any); len(ccm) != 1 || ccm[0] != "S256" {
			t.Errorf("code_challenge_methods_supported %v", ccm)
		}
		if !strings.Contains(strings.Join(toStrings(m["token_endpoint_auth_methods_supported"]), " "), "none") {
			t.Errorf("token_endpoint_auth_methods_supported lacks none")
		}
		if g := toStrings(m["grant_types_supported"]); len(g) != 3 {
			t.Errorf("grant_types_supported %v", g)
		}
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// Each valid /authorize stores a pending request until sign-in, so one address may start only
// AuthorizeRateLimit of them per window; beyond that a 429 page, nothing stored.
func TestAuthorizeRateLimitPerAddress(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AuthorizeRateLimit = 3 })
	c := e.register(nil)
	get := func(addr string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, authorizeURL(e, c, newPKCE(), nil), nil)
		req.RemoteAddr = addr
		req.Header.Set("X-Forwarded-For", "203.0.113.50") // never consulted
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		return rec
	}
	const a, b = "198.51.100.1:1000", "198.51.100.2:1000"
	tests := []struct {
		addr    string
		advance time.Duration
		want    int
	}{
		{a, 0, http.StatusFound},
		{a, 0, http.StatusFound},
		{a, 0, http.StatusFound},
		{a, 15 * time.Second, http.StatusTooManyRequests},
		{b, 0, http.StatusFound},
		{a, 46 * time.Second, http.StatusFound},
	}
	for i, tc := range tests {
		e.clock.Advance(tc.advance)
		rec := get(tc.addr)
		if rec.Code != tc.want {
			t.Fatalf("request %d from %s: %d, want %d", i, tc.addr, rec.Code, tc.want)
		}
		if rec.Code == http.StatusTooManyRequests {
			// Retry-After: the rest of a's window, which began 15 s earlier.
			if rec.Header().Get("Retry-After") != "45" || !strings.Contains(rec.Body.String(), "Wait 45 seconds") || rec.Header().Get("Location") != "" {
				t.Errorf("429 page: headers %v body %q", rec.Header(), rec.Body.String())
			}
		}
	}
	if n, _ := e.srv.store.Count(context.Background(), bucketAuthReqs); n != 5 {
		t.Errorf("%d pending requests stored, want 5", n)
	}
}

// prompt=login and max_age (OIDC Core 3.1.2.1): an existing session does not satisfy them; the
// user signs in again inside the pending request, and that sign-in completes the flow.
func TestPromptLoginForcesSignIn(t *testing.T) {
	e := newEnv(t, nil)
	c := e.register(nil)
	cases := []struct {
		name    string
		extra   url.Values
		advance time.Duration // clock moved after the first sign-in
		want    string        // "login" (sign-in page, then code), "code", or an error code
		relogAs string        // username for the new sign-in
	}{
		{"no prompt uses session", nil, 0, "code", ""},
		{"select_account uses session", url.Values{"prompt": {"select_account"}}, 0, "code", ""},
		{"login", url.Values{"prompt": {"login"}}, 0, "login", "alice"},
		{"login as another user", url.Values{"prompt": {"login"}}, 0, "login", "bob"},
		{"login select_account", url.Values{"prompt": {"select_account login"}}, 0, "login", "alice"},
		{"login none", url.Values{"prompt": {"login none"}}, 0, "invalid_request", ""},
		{"none select_account", url.Values{"prompt": {"none select_account"}}, 0, "invalid_request", ""},
		{"max_age 0", url.Values{"max_age": {"0"}}, time.Second, "login", "alice"},
		{"max_age fresh session", url.Values{"max_age": {"3600"}}, time.Minute, "code", ""},
		{"max_age old session", url.Values{"max_age": {"3600"}}, 2 * time.Hour, "login", "alice"},
		{"max_age old with none", url.Values{"max_age": {"60"}, "prompt": {"none"}}, time.Hour, "login_required", ""},
		{"max_age negative", url.Values{"max_age": {"-1"}}, 0, "invalid_request", ""},
		{"max_age not a number", url.Values{"max_age": {"1h"}}, 0, "invalid_request", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browser()
			e.getCode(b, c, newPKCE(), "alice", "", nil) // signed in, consent remembered
			e.clock.Advance(tc.advance)
			p := newPKCE()
			pg := b.follow(authorizeURL(e, c, p, tc.extra))
			var q url.Values
			switch tc.want {
			case "code":
				u, _ := url.Parse(pg.location)
				q = u.Query()
				if pg.status != http.StatusFound || q.Get("code") == "" {
					t.Fatalf("want code from the existing session, got %d %s", pg.status, pg.location)
				}
			case "login":
				if pg.status != http.StatusOK || !strings.Contains(pg.body, `name="username"`) {
					t.Fatalf("want the sign-in page, got %d %s %s", pg.status, pg.location, pg.body)
				}
				reqID := formValue(t, reqRe, pg.body)
				if reqID == "" {
					t.Fatalf("sign-in page not tied to the pending request")
				}
				// The old session cannot approve the pending request by posting the consent form.
				if r := b.post(e.url("/consent"), url.Values{"csrf_token": {formValue(t, csrfRe, pg.body)}, "req": {reqID}, "action": {"approve"}}); r.status != http.StatusSeeOther || r.location != e.url("/login?req="+url.QueryEscape(reqID)) {
					t.Fatalf("consent POST with the old session: %d %s", r.status, r.location)
				}
				pg = b.devLogin(pg, tc.relogAs, "")
				if strings.Contains(pg.body, `value="approve"`) {
					pg = b.approve(pg)
				}
				u, _ := url.Parse(pg.location)
				q = u.Query()
				if pg.status != http.StatusFound || !strings.HasPrefix(pg.location, c.RedirectURI+"?") || q.Get("code") == "" {
					t.Fatalf("after signing in again: want a code at the client's redirect URI, got %d %s", pg.status, pg.location)
				}
			default:
				u, _ := url.Parse(pg.location)
				q = u.Query()
				if pg.status != http.StatusFound || !strings.HasPrefix(pg.location, c.RedirectURI+"?") || q.Get("error") != tc.want || q.Get("code") != "" {
					t.Fatalf("want %s, got %d %s", tc.want, pg.status, pg.location)
				}
			}
			if q.Get("state") != "st-123" || q.Get("iss") != e.issuer {
				t.Fatalf("state/iss not preserved: %v", q)
			}
			if q.Get("code") == "" {
				return
			}
			resp, m := e.redeem(c, q.Get("code"), p.verifier, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("redeem: %d %v", resp.StatusCode, m)
			}
			claims, _ := verifyWithJWKS(t, e, m["access_token"].(string))
			wantSub := "dev:alice"
			if tc.relogAs != "" {
				wantSub = "dev:" + tc.relogAs
			}
			if claims["sub"] != wantSub {
				t.Errorf("sub %v, want %s", claims["sub"], wantSub)
			}
		})
	}
}

// prompt=login with GitHub sign-in: the user goes through GitHub again (its account picker is
// requested), and the callback completes the pending request.
func TestPromptLoginGitHub(t *testing.T) {
	g := newFakeGitHub(t)
	e := newEnv(t, withGitHub(g))
	c := e.register(nil)
	b := e.browser()
	e.githubLogin(b, c, newPKCE())
	exchanges := g.codeExchanges.Load()
	p := newPKCE()
	pg := b.follow(authorizeURL(e, c, p, url.Values{"prompt": {"login"}}))
	if pg.status != http.StatusOK || !ghLinkRe.MatchString(pg.body) {
		t.Fatalf("want the sign-in page, got %d %s", pg.status, pg.location)
	}
	r := b.get(strings.ReplaceAll(formValue(t, ghLinkRe, pg.body), "&amp;", "&"))
	gh, _ := url.Parse(r.location)
	if r.status != http.StatusFound || !strings.HasPrefix(r.location, g.ts.URL+"/login/oauth/authorize?") || gh.Query().Get("prompt") != "select_account" {
		t.Fatalf("github start: %d %s", r.status, r.location)
	}
	r = b.get(r.location) // fake GitHub -> callback
	pg = b.follow(r.location)
	u, _ := url.Parse(pg.location)
	if pg.status != http.StatusFound || u.Query().Get("code") == "" || u.Query().Get("state") != "st-123" {
		t.Fatalf("after GitHub sign-in: %d %s %s", pg.status, pg.location, pg.body)
	}
	if g.codeExchanges.Load() != exchanges+1 {
		t.Errorf("GitHub code exchanges %d, want %d", g.codeExchanges.Load(), exchanges+1)
	}
	if resp, m := e.redeem(c, u.Query().Get("code"), p.verifier, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("redeem: %d %v", resp.StatusCode, m)
	}
}

// A resource longer than maxResourceLen is refused (nothing stored grows with what a client
// sends), even where any resource is allowed.
func TestAuthorizeResourceTooLong(t *testing.T) {
	e := newEnv(t, nil)
	c := e.register(nil)
	long := "https://mcp.example.com/" + strings.Repeat("r", maxResourceLen)
	pg := e.browser().get(authorizeURL(e, c, newPKCE(), url.Values{"resource": {long}}))
	u, err := url.Parse(pg.location)
	if pg.status != http.StatusFound || err != nil || u.Query().Get("error") != "invalid_target" ||
		!strings.Contains(u.Query().Get("error_description"), "2048") {
		t.Fatalf("long resource: %d %s", pg.status, pg.location)
	}
	ok := "https://mcp.example.com/" + strings.Repeat("r", maxResourceLen-len("https://mcp.example.com/"))
	if pg := e.browser().get(authorizeURL(e, c, newPKCE(), url.Values{"resource": {ok}})); strings.Contains(pg.location, "error=") {
		t.Fatalf("resource of exactly %d characters refused: %s", maxResourceLen, pg.location)
	}
}
