package idp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// A reused code is refused and revokes what the first redemption issued; of two
// parallel redemptions exactly one succeeds.
func TestCodeReuse(t *testing.T) {
	e := newEnv(t, nil)
	c := e.register(nil)
	p := newPKCE()
	q := e.getCode(e.browser(), c, p, "carol", "ghp_carol_token", nil)
	resp, first := e.redeem(c, q.Get("code"), p.verifier, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("first redemption: %d %v", resp.StatusCode, first)
	}
	resp, m := e.redeem(c, q.Get("code"), p.verifier, nil)
	if resp.StatusCode != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("reuse: %d %v", resp.StatusCode, m)
	}
	// The first exchange's tokens are revoked: refresh fails, access token no longer introspects
	// or exchanges.
	if resp, m := e.refresh(c, first["refresh_token"].(string)); resp.StatusCode != 400 || m["error"] != "invalid_grant" {
		t.Errorf("refresh after code reuse: %d %v", resp.StatusCode, m)
	}
	if resp, m := e.exchange(first["access_token"].(string), "gateway", "gateway-secret-0123456789"); resp.StatusCode != 400 || m["error"] != "invalid_request" {
		t.Errorf("exchange after code reuse: %d %v", resp.StatusCode, m)
	}
	if m := e.introspect(first["access_token"].(string)); m["active"] != false {
		t.Errorf("introspect after code reuse: %v", m)
	}

	t.Run("parallel", func(t *testing.T) {
		for round := 0; round < 5; round++ {
			p := newPKCE()
			q := e.getCode(e.browser(), c, p, "dave", "", nil)
			const n = 8
			var wg sync.WaitGroup
			codes := make([]int, n)
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					resp, _ := e.redeem(c, q.Get("code"), p.verifier, nil)
					codes[i] = resp.StatusCode
				}(i)
			}
			wg.Wait()
			ok := 0
			for _, s := range codes {
				if s == 200 {
					ok++
				}
			}
			if ok != 1 {
				t.Fatalf("round %d: %d successful redemptions (%v), want exactly 1", round, ok, codes)
			}
		}
	})
}

// PKCE verifier and code binding errors (client, redirect URI, expiry, duplicated parameters).
func TestCodeRedemptionChecks(t *testing.T) {
	e := newEnv(t, nil)
	c := e.register(map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb", "https://app.example.com/cb"}})
	other := e.register(nil)
	conf := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_basic"})
	cases := []struct {
		name   string
		as     *testClient
		extra  url.Values
		expire bool
		status int
		err    string
	}{
		{"verifier wrong", nil, url.Values{"code_verifier": {strings.Repeat("a", 43)}}, false, 400, "invalid_grant"},
		{"verifier missing", nil, url.Values{"code_verifier": nil}, false, 400, "invalid_grant"},
		{"verifier too short", nil, url.Values{"code_verifier": {strings.Repeat("a", 42)}}, false, 400, "invalid_grant"},
		{"verifier too long", nil, url.Values{"code_verifier": {strings.Repeat("a", 129)}}, false, 400, "invalid_grant"},
		{"verifier illegal chars", nil, url.Values{"code_verifier": {strings.Repeat("a", 42) + "+"}}, false, 400, "invalid_grant"},
		{"another client", &other, nil, false, 400, "invalid_grant"},
		{"another redirect", nil, url.Values{"redirect_uri": {"https://app.example.com/cb"}}, false, 400, "invalid_grant"},
		{"redirect missing", nil, url.Values{"redirect_uri": nil}, false, 400, "invalid_grant"},
		{"expired", nil, nil, true, 400, "invalid_grant"},
		{"duplicated code", nil, url.Values{"code": {"x", "y"}}, false, 400, "invalid_request"},
		{"duplicated verifier", nil, url.Values{"code_verifier": {"x", "y"}}, false, 400, "invalid_request"},
		{"resource differs", nil, url.Values{"resource": {"https://other.example.com/mcp"}}, false, 400, "invalid_target"},
		{"unknown code", nil, url.Values{"code": {"garbage"}}, false, 400, "invalid_grant"},
		{"confidential client without secret", &testClient{ID: conf.ID, RedirectURI: conf.RedirectURI}, nil, false, 401, "invalid_client"},
		{"gateway uses code grant", &testClient{ID: "gateway", Secret: "gateway-secret-0123456789", RedirectURI: c.RedirectURI}, nil, false, 400, "unauthorized_client"},
		{"ok", nil, nil, false, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPKCE()
			q := e.getCode(e.browser(), c, p, "erin", "", url.Values{"redirect_uri": {"http://127.0.0.1:4711/cb"}})
			if tc.expire {
				e.clock.Advance(61 * time.Second)
			}
			who := c
			who.RedirectURI = "http://127.0.0.1:4711/cb"
			if tc.as != nil {
				who = *tc.as
				if who.RedirectURI == c.RedirectURI {
					who.RedirectURI = "http://127.0.0.1:4711/cb"
				}
			}
			code := q.Get("code")
			extra := tc.extra
			if v, ok := extra["code"]; ok && len(v) == 2 {
				extra = url.Values{"code": {code, code}}
			}
			resp, m := e.redeem(who, code, p.verifier, extra)
			if resp.StatusCode != tc.status || (tc.err != "" && m["error"] != tc.err) {
				t.Fatalf("got %d %v, want %d %s", resp.StatusCode, m, tc.status, tc.err)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
			}
		})
	}
	t.Run("verifier without challenge", func(t *testing.T) {
		// Every code has a challenge (PKCE is mandatory); the check still exists for stored codes
		// that would lack one.
		if oerr := checkPKCE("", strings.Repeat("a", 43), true); oerr == nil || oerr.Code != "invalid_grant" {
			t.Fatalf("got %v", oerr)
		}
	})
}

func (e *testEnv) refresh(c testClient, rt string) (*http.Response, map[string]any) {
	e.t.Helper()
	v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if c.Secret != "" {
		return e.postForm("/token", v, c.ID, c.Secret)
	}
	v.Set("client_id", c.ID)
	return e.postForm("/token", v, "", "")
}

func (e *testEnv) introspect(tok string) map[string]any {
	e.t.Helper()
	resp, m := e.postForm("/introspect", url.Values{"token": {tok}}, "gateway", "gateway-secret-0123456789")
	if resp.StatusCode != 200 {
		e.t.Fatalf("introspect: %d %v", resp.StatusCode, m)
	}
	return m
}

// Refresh token rotation, reuse, another client's token and the absolute expiry.
func TestRefreshRotation(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RefreshGrace = 5 * time.Second; o.RefreshTokenTTL = 24 * time.Hour })
	c := e.register(nil)
	other := e.register(nil)

	t.Run("rotation and reuse revokes family", func(t *testing.T) {
		tok := e.login(c, "frank", "")
		rt1 := tok["refresh_token"].(string)
		resp, t2 := e.refresh(c, rt1)
		if resp.StatusCode != 200 || t2["refresh_token"] == rt1 || t2["refresh_token"] == nil {
			t.Fatalf("refresh: %d %v", resp.StatusCode, t2)
		}
		// Within the grace window a concurrent refresh with rt1 still works.
		e.clock.Advance(2 * time.Second)
		if resp, m := e.refresh(c, rt1); resp.StatusCode != 200 {
			t.Fatalf("refresh within grace: %d %v", resp.StatusCode, m)
		}
		// Outside the window: invalid_grant and the whole family is revoked.
		e.clock.Advance(10 * time.Second)
		if resp, m := e.refresh(c, rt1); resp.StatusCode != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("reuse: %d %v", resp.StatusCode, m)
		}
		if resp, m := e.refresh(c, t2["refresh_token"].(string)); resp.StatusCode != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("successor after reuse: %d %v", resp.StatusCode, m)
		}
		if m := e.introspect(t2["access_token"].(string)); m["active"] != false {
			t.Errorf("access token of revoked family still active")
		}
	})
	t.Run("another client", func(t *testing.T) {
		tok := e.login(c, "grace", "")
		if resp, m := e.refresh(other, tok["refresh_token"].(string)); resp.StatusCode != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("foreign client: %d %v", resp.StatusCode, m)
		}
		// The owner can still use it: the foreign attempt did not rotate it.
		if resp, m := e.refresh(c, tok["refresh_token"].(string)); resp.StatusCode != 200 {
			t.Fatalf("owner after foreign attempt: %d %v", resp.StatusCode, m)
		}
	})
	t.Run("absolute lifetime", func(t *testing.T) {
		tok := e.login(c, "heidi", "")
		rt := tok["refresh_token"].(string)
		for i := 0; i < 3; i++ { // keep rotating: the lifetime does not extend
			e.clock.Advance(7 * time.Hour)
			resp, m := e.refresh(c, rt)
			if resp.StatusCode != 200 {
				t.Fatalf("refresh %d: %d %v", i, resp.StatusCode, m)
			}
			rt = m["refresh_token"].(string)
		}
		e.clock.Advance(4 * time.Hour) // 25h after login
		if resp, m := e.refresh(c, rt); resp.StatusCode != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("after absolute expiry: %d %v", resp.StatusCode, m)
		}
	})
	t.Run("scope cannot grow", func(t *testing.T) {
		tok := e.login(c, "ivan", "")
		v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}, "client_id": {c.ID}, "scope": {"mcp admin"}}
		if resp, m := e.postForm("/token", v, "", ""); resp.StatusCode != 400 || m["error"] != "invalid_scope" {
			t.Fatalf("wider scope: %d %v", resp.StatusCode, m)
		}
	})
}

// Revocation: a refresh token stops its family; garbage gets 200; another client's token is
// untouched.
func TestRevocation(t *testing.T) {
	e := newEnv(t, nil)
	c := e.register(nil)
	other := e.register(nil)
	revoke := func(cl testClient, tok string) int {
		resp, _ := e.postForm("/revoke", url.Values{"token": {tok}, "client_id": {cl.ID}}, "", "")
		return resp.StatusCode
	}
	tok := e.login(c, "judy", "")
	// Another client's revocation has no effect.
	if s := revoke(other, tok["refresh_token"].(string)); s != 200 {
		t.Fatalf("foreign revoke: %d", s)
	}
	resp, t2 := e.refresh(c, tok["refresh_token"].(string))
	if resp.StatusCode != 200 {
		t.Fatalf("refresh after foreign revoke: %d %v", resp.StatusCode, t2)
	}
	// Garbage: 200.
	if s := revoke(c, "garbage"); s != 200 {
		t.Errorf("garbage revoke: %d", s)
	}
	// Revoking the refresh token stops refresh and the family's access tokens.
	if s := revoke(c, t2["refresh_token"].(string)); s != 200 {
		t.Fatalf("revoke: %d", s)
	}
	if resp, m := e.refresh(c, t2["refresh_token"].(string)); resp.StatusCode != 400 || m["error"] != "invalid_grant" {
		t.Errorf("refresh after revoke: %d %v", resp.StatusCode, m)
	}
	if m := e.introspect(t2["access_token"].(string)); m["active"] != false {
		t.Errorf("family access token after revoke: %v", m)
	}
	// Access token revocation by jti.
	tok3 := e.login(c, "judy", "")
	if m := e.introspect(tok3["access_token"].(string)); m["active"] != true || m["sub"] != "dev:judy" {
		t.Fatalf("introspect active: %v", m)
	}
	revoke(other, tok3["access_token"].(string))
	if m := e.introspect(tok3["access_token"].(string)); m["active"] != true {
		t.Fatalf("foreign access-token revoke had effect")
	}
	revoke(c, tok3["access_token"].(string))
	if m := e.introspect(tok3["access_token"].(string)); m["active"] != false {
		t.Fatalf("revoked access token still active")
	}
	// Missing token parameter.
	if resp, m := e.postForm("/revoke", url.Values{"client_id": {c.ID}}, "", ""); resp.StatusCode != 400 || m["error"] != "invalid_request" {
		t.Errorf("revoke without token: %d %v", resp.StatusCode, m)
	}
}

func TestIntrospectionRequiresConfidentialClient(t *testing.T) {
	e := newEnv(t, nil)
	c := e.register(nil)
	conf := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_basic"})
	tok := e.login(c, "ken", "")
	cases := []struct {
		name       string
		user, pass string
		form       url.Values
		status     int
		active     any
	}{
		{"public client", "", "", url.Values{"client_id": {c.ID}}, 401, nil},
		{"no auth", "", "", url.Values{}, 401, nil},
		{"wrong secret", "gateway", "nope", url.Values{}, 401, nil},
		{"other confidential client", conf.ID, conf.Secret, url.Values{}, 200, false},
		{"gateway", "gateway", "gateway-secret-0123456789", url.Values{}, 200, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("token", tok["access_token"].(string))
			resp, m := e.postForm("/introspect", tc.form, tc.user, tc.pass)
			if resp.StatusCode != tc.status || (tc.active != nil && m["active"] != tc.active) {
				t.Fatalf("got %d %v", resp.StatusCode, m)
			}
		})
	}
	// Refresh token introspection.
	m := e.introspect(tok["refresh_token"].(string))
	if m["active"] != true || m["token_type"] != "refresh_token" {
		t.Errorf("refresh introspection: %v", m)
	}
}

func TestTokenEndpointRequestErrors(t *testing.T) {
	e := newEnv(t, nil)
	c := e.register(nil)
	cases := []struct {
		name   string
		ct     string
		body   string
		status int
		err    string
	}{
		{"json body", "application/json", `{"grant_type":"authorization_code"}`, 400, "invalid_request"},
		{"no grant type", "application/x-www-form-urlencoded", "client_id=" + c.ID, 400, "invalid_request"},
		{"password grant", "application/x-www-form-urlencoded", "grant_type=password&client_id=" + c.ID, 400, "unsupported_grant_type"},
		{"implicit via token", "application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=" + c.ID, 400, "unsupported_grant_type"},
		{"unknown client", "application/x-www-form-urlencoded", "grant_type=authorization_code&client_id=nobody", 401, "invalid_client"},
		{"public with secret", "application/x-www-form-urlencoded", "grant_type=authorization_code&client_id=" + c.ID + "&client_secret=x", 401, "invalid_client"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.url("/token"), strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.ct)
			resp, m := doJSON(t, req)
			if resp.StatusCode != tc.status || m["error"] != tc.err {
				t.Fatalf("got %d %v", resp.StatusCode, m)
			}
		})
	}
}

// A refresh token replayed within the grace window must get the successor chosen at rotation, not a
// new independent refresh token: otherwise a stolen token starts a live branch of its own and reuse
// detection never fires.
func TestRefreshGraceReturnsSameSuccessor(t *testing.T) {
	const grace = 5 * time.Second
	e := newEnv(t, func(o *Options) { o.RefreshGrace = grace; o.RefreshTokenTTL = 24 * time.Hour })
	c := e.register(nil)
	mustRefresh := func(t *testing.T, rt string) map[string]any {
		t.Helper()
		resp, m := e.refresh(c, rt)
		if resp.StatusCode != 200 || m["refresh_token"] == nil {
			t.Fatalf("refresh: %d %v", resp.StatusCode, m)
		}
		return m
	}
	mustFail := func(t *testing.T, rt, what string) {
		t.Helper()
		if resp, m := e.refresh(c, rt); resp.StatusCode != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("%s: want 400 invalid_grant, got %d %v", what, resp.StatusCode, m)
		}
	}
	tests := []struct {
		name string
		run  func(t *testing.T, rt0 string)
	}{
		{"replays within grace get the same successor", func(t *testing.T, rt0 string) {
			rt1 := mustRefresh(t, rt0)["refresh_token"]
			for i := range 3 {
				e.clock.Advance(time.Second)
				if got := mustRefresh(t, rt0)["refresh_token"]; got != rt1 {
					t.Fatalf("replay %d within grace minted another refresh token", i)
				}
			}
		}},
		{"a stolen token replayed in grace has no branch of its own", func(t *testing.T, rt0 string) {
			legit := mustRefresh(t, rt0)["refresh_token"].(string)
			stolen := mustRefresh(t, rt0)["refresh_token"].(string) // attacker, within grace
			legit2 := mustRefresh(t, legit)["refresh_token"].(string)
			e.clock.Advance(2 * grace)
			mustFail(t, stolen, "attacker's token after the legitimate client rotated it")
			mustFail(t, legit2, "family after reuse was detected")
		}},
		{"concurrent refreshes end with one live family", func(t *testing.T, rt0 string) {
			const n = 8
			got := make([]string, n)
			status := make([]int, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt0}, "client_id": {c.ID}}
					resp, err := http.PostForm(e.url("/token"), v)
					if err != nil {
						return
					}
					defer resp.Body.Close()
					var m map[string]any
					_ = json.NewDecoder(resp.Body).Decode(&m)
					status[i] = resp.StatusCode
					got[i], _ = m["refresh_token"].(string)
				})
			}
			wg.Wait()
			for i := range n {
				if status[i] != 200 || got[i] == "" || got[i] != got[0] {
					t.Fatalf("concurrent refresh %d: status %d, same successor %v", i, status[i], got[i] == got[0])
				}
			}
			e.clock.Advance(2 * grace)
			next := mustRefresh(t, got[0])["refresh_token"].(string)
			mustRefresh(t, next)
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, e.login(c, fmt.Sprintf("grace%d", i), "")["refresh_token"].(string))
		})
	}
}

// A used code's record outlives the code's own expiry and cleanup until the access tokens it
// produced have expired, so a late replay is still detected as reuse and revokes the grant.
func TestCodeReplayAfterCleanup(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AccessTokenTTL = time.Hour; o.CodeTTL = time.Minute })
	c := e.register(nil)
	tests := []struct {
		name      string
		after     time.Duration
		wantReuse bool // replay answers "already used" and revokes; otherwise the record is gone
	}{
		{"just after the code expired", 61 * time.Second, true},
		{"just before the access token expires", time.Hour - time.Second, true},
		{"after the access tokens expired", time.Hour + time.Minute + 2*time.Second, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPKCE()
			q := e.getCode(e.browser(), c, p, fmt.Sprintf("replay%d", i), "", nil)
			resp, first := e.redeem(c, q.Get("code"), p.verifier, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("first redemption: %d %v", resp.StatusCode, first)
			}
			e.clock.Advance(tc.after)
			e.srv.cleanup(context.Background())
			_, err := e.srv.store.Get(context.Background(), bucketCodes, hashSecret(q.Get("code")))
			if kept := err == nil; kept != tc.wantReuse {
				t.Fatalf("used code record kept=%v after %v, want %v", kept, tc.after, tc.wantReuse)
			}
			if !tc.wantReuse {
				return
			}
			resp, m := e.redeem(c, q.Get("code"), p.verifier, nil)
			desc, _ := m["error_description"].(string)
			if resp.StatusCode != 400 || m["error"] != "invalid_grant" || !strings.Contains(desc, "already used") {
				t.Fatalf("replay: %d %v, want invalid_grant 'already used'", resp.StatusCode, m)
			}
			if resp, m := e.refresh(c, first["refresh_token"].(string)); resp.StatusCode != 400 || m["error"] != "invalid_grant" {
				t.Errorf("refresh token of the replayed code still works: %d %v", resp.StatusCode, m)
			}
			if _, err := e.srv.verifyAccessToken(context.Background(), first["access_token"].(string)); err == nil {
				t.Errorf("access token of the replayed code still verifies")
			}
		})
	}
}

// RFC 6749 §6: a refresh with a narrower scope narrows that access token only; the new refresh
// token keeps the original grant, so a later refresh may ask for all of it again.
func TestRefreshNarrowedScopeKeepsGrant(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Scopes = []string{"mcp", "extra"} })
	c := e.register(map[string]any{"scope": "mcp extra"})
	p := newPKCE()
	q := e.getCode(e.browser(), c, p, "nina", "", url.Values{"scope": {"mcp extra"}})
	resp, tok := e.redeem(c, q.Get("code"), p.verifier, nil)
	if resp.StatusCode != 200 || tok["scope"] != "mcp extra" {
		t.Fatalf("redeem: %d %v", resp.StatusCode, tok)
	}
	rt := tok["refresh_token"].(string)
	tests := []struct {
		request   string // scope parameter; "" = none
		wantScope string // "" = refused with invalid_scope
	}{
		{"mcp", "mcp"},
		{"", "mcp extra"},
		{"extra", "extra"},
		{"mcp extra", "mcp extra"},
		{"mcp admin", ""},
		{"extra mcp", "extra mcp"},
	}
	for _, tc := range tests {
		v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.ID}}
		if tc.request != "" {
			v.Set("scope", tc.request)
		}
		resp, m := e.postForm("/token", v, "", "")
		if tc.wantScope == "" {
			if resp.StatusCode != 400 || m["error"] != "invalid_scope" {
				t.Fatalf("scope %q: %d %v, want invalid_scope", tc.request, resp.StatusCode, m)
			}
			continue
		}
		if resp.StatusCode != 200 || m["scope"] != tc.wantScope {
			t.Fatalf("scope %q: %d %v, want scope %q", tc.request, resp.StatusCode, m, tc.wantScope)
		}
		claims, err := e.srv.verifyAccessToken(context.Background(), m["access_token"].(string))
		if err != nil || claims.Scope != tc.wantScope {
			t.Fatalf("scope %q: access token scope %v (%v)", tc.request, claims, err)
		}
		if got := e.introspect(m["refresh_token"].(string))["scope"]; got != "mcp extra" {
			t.Fatalf("scope %q: new refresh token's scope %v, want the original grant", tc.request, got)
		}
		rt = m["refresh_token"].(string)
	}
}
