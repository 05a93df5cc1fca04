package idp

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var ghLinkRe = regexp.MustCompile(`href="([^"]*/login/github[^"]*)"`)

// githubLogin runs authorize -> login page -> GitHub -> callback -> consent -> code.
func (e *testEnv) githubLogin(b *browser, c testClient, p pkce) url.Values {
	e.t.Helper()
	pg := b.follow(authorizeURL(e, c, p, nil))
	link := strings.ReplaceAll(formValue(e.t, ghLinkRe, pg.body), "&amp;", "&")
	r := b.get(link) // -> GitHub authorize
	if r.status != http.StatusFound {
		e.t.Fatalf("github start: %d %s", r.status, r.body)
	}
	r = b.get(r.location) // fake GitHub -> callback
	if r.status != http.StatusFound || !strings.HasPrefix(r.location, e.issuer+"/github/callback") {
		e.t.Fatalf("fake github authorize: %d %s", r.status, r.location)
	}
	pg = b.follow(r.location)
	if strings.Contains(pg.body, `value="approve"`) {
		pg = b.approve(pg)
	}
	u, _ := url.Parse(pg.location)
	if pg.status != http.StatusFound || u.Query().Get("code") == "" {
		e.t.Fatalf("no code: %d %s %s", pg.status, pg.location, pg.body)
	}
	return u.Query()
}

// githubTokens signs a new browser in with GitHub for c and redeems the
// code: the token response (access_token, refresh_token, ...).
func (e *testEnv) githubTokens(c testClient) map[string]any {
	e.t.Helper()
	p := newPKCE()
	q := e.githubLogin(e.browser(), c, p)
	_, tok := e.redeem(c, q.Get("code"), p.verifier, nil)
	return tok
}

func (e *testEnv) exchangeAud(subject, aud string) (*http.Response, map[string]any) {
	return e.postForm("/token", url.Values{
		"grant_type":         {grantTokenExchange},
		"subject_token":      {subject},
		"subject_token_type": {tokenTypeAccessToken},
		"audience":           {aud},
	}, "gateway", "gateway-secret-0123456789")
}

// A full flow against a fake GitHub: sign in, tokens stored, sub from /user, exchange, refresh
// of the expired GitHub token.
func TestGitHubFullFlow(t *testing.T) {
	g := newFakeGitHub(t)
	e := newEnv(t, withGitHub(g))
	c := e.register(nil)
	b := e.browser()
	p := newPKCE()
	q := e.githubLogin(b, c, p)
	resp, tok := e.redeem(c, q.Get("code"), p.verifier, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("redeem: %d %v", resp.StatusCode, tok)
	}
	claims, _ := verifyWithJWKS(t, e, tok["access_token"].(string))
	if claims["sub"] != "github:4242" {
		t.Fatalf("sub %v, want github:4242", claims["sub"])
	}
	// /userinfo: a GitHub user's name is the GitHub profile name, not the login.
	ureq, _ := http.NewRequest(http.MethodGet, e.url("/userinfo"), nil)
	ureq.Header.Set("Authorization", "Bearer "+tok["access_token"].(string))
	if uresp, um := doJSON(t, ureq); uresp.StatusCode != 200 || um["preferred_username"] != "octo" || um["name"] != "The Octocat" {
		t.Errorf("userinfo %d %v", uresp.StatusCode, um)
	}
	api := g.ts.URL + "/api"
	resp, x := e.exchangeAud(tok["access_token"].(string), api)
	if resp.StatusCode != 200 || !strings.HasPrefix(x["access_token"].(string), "ghu_access_") {
		t.Fatalf("exchange: %d %v", resp.StatusCode, x)
	}
	if ei, _ := x["expires_in"].(float64); ei < 8*3600-60 || ei > 8*3600 {
		t.Errorf("expires_in %v", x["expires_in"])
	}
	first := x["access_token"]
	// GitHub token expires: the next exchange refreshes it once and returns the new one.
	e.clock.Advance(8*time.Hour + time.Minute)
	// Our own access token expired too; get a fresh one by refresh.
	resp, tok2 := e.refresh(c, tok["refresh_token"].(string))
	if resp.StatusCode != 200 {
		t.Fatalf("refresh: %d %v", resp.StatusCode, tok2)
	}
	resp, x = e.exchangeAud(tok2["access_token"].(string), api)
	if resp.StatusCode != 200 || x["access_token"] == first || g.refreshes.Load() != 1 {
		t.Fatalf("exchange after expiry: %d %v, refreshes %d", resp.StatusCode, x, g.refreshes.Load())
	}
	// Account page shows the link.
	pg := b.get(e.url("/account"))
	if pg.status != 200 || !strings.Contains(pg.body, "octo") || !strings.Contains(pg.body, "linked") {
		t.Errorf("account page: %d %s", pg.status, pg.body)
	}
	// Re-link through GitHub from the account page.
	r := b.get(e.url("/login/github?link=1"))
	r = b.get(r.location)
	r = b.get(r.location)
	if r.status != http.StatusSeeOther || !strings.Contains(r.location, "/account?msg=linked") {
		t.Fatalf("relink: %d %s %s", r.status, r.location, r.body)
	}
	// The dev login is off.
	if r := e.browser().post(e.url("/login"), url.Values{"username": {"x"}}); r.status != 404 {
		t.Errorf("dev login enabled with GitHub configured: %d", r.status)
	}
}

// GitHub callback state: missing, mismatched or reused state -> 400, no code.
func TestGitHubCallbackState(t *testing.T) {
	g := newFakeGitHub(t)
	e := newEnv(t, withGitHub(g))
	c := e.register(nil)

	start := func(b *browser) (callback string) {
		pg := b.follow(authorizeURL(e, c, newPKCE(), nil))
		link := strings.ReplaceAll(formValue(t, ghLinkRe, pg.body), "&amp;", "&")
		r := b.get(link)
		r = b.get(r.location)
		return r.location
	}
	cases := []struct {
		name string
		run  func() page
	}{
		{"missing state", func() page {
			b := e.browser()
			cb := start(b)
			u, _ := url.Parse(cb)
			q := u.Query()
			q.Del("state")
			u.RawQuery = q.Encode()
			return b.get(u.String())
		}},
		{"state of another browser", func() page {
			victim := e.browser()
			cb := start(e.browser()) // attacker's flow
			start(victim)
			return victim.get(cb)
		}},
		{"no state cookie", func() page {
			cb := start(e.browser())
			return e.browser().get(cb)
		}},
		{"reused state", func() page {
			b := e.browser()
			cb := start(b)
			r := b.get(cb)
			if r.status != http.StatusSeeOther {
				t.Fatalf("first callback: %d %s", r.status, r.body)
			}
			// Replay with the cookie restored.
			u, _ := url.Parse(e.issuer)
			b.c.Jar.SetCookies(u, []*http.Cookie{{Name: e.srv.stateCookieName(), Value: mustQuery(cb, "state"), Path: "/"}})
			return b.get(cb)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := g.codeExchanges.Load()
			r := tc.run()
			if r.status != http.StatusBadRequest || r.location != "" {
				t.Fatalf("got %d location %q, want 400", r.status, r.location)
			}
			if tc.name != "reused state" && g.codeExchanges.Load() != before {
				t.Errorf("a GitHub code was exchanged despite the bad state")
			}
			if tc.name == "reused state" && g.codeExchanges.Load() != before+1 {
				t.Errorf("code exchanges %d, want exactly one (the first callback)", g.codeExchanges.Load()-before)
			}
		})
	}
}

func mustQuery(u, k string) string {
	p, _ := url.Parse(u)
	return p.Query().Get(k)
}

// Token exchange refusals: a client not allowed to exchange, a wrong secret, an expired, foreign
// or other-resource subject token, another audience, no linked GitHub token.
func TestTokenExchangeRefusals(t *testing.T) {
	e := newEnv(t, nil)
	other := newEnv(t, nil)
	c := e.register(nil)
	conf := e.register(map[string]any{"token_endpoint_auth_method": "client_secret_basic"})
	linked := e.login(c, "linked", "ghp_linked_token")["access_token"].(string)
	unlinked := e.login(c, "unlinked", "")["access_token"].(string)
	oc := other.register(nil)
	foreign := other.login(oc, "linked", "ghp_other")["access_token"].(string)
	expired := e.login(c, "old", "ghp_old_token")["access_token"].(string)
	// The same linked user's token, issued by this server to a client for another resource (any
	// client may ask for any resource): the gateway serves only https://mcp.example.com/mcp.
	otherResource := e.loginFor(c, "linked", url.Values{"resource": {"https://other.example/mcp"}})["access_token"].(string)

	base := func(subject string) url.Values {
		return url.Values{"grant_type": {grantTokenExchange}, "subject_token": {subject},
			"subject_token_type": {tokenTypeAccessToken}, "audience": {"https://api.github.com"}}
	}
	with := func(v url.Values, k, val string) url.Values {
		v = url.Values(cloneValues(v))
		if val == "" {
			v.Del(k)
		} else {
			v.Set(k, val)
		}
		return v
	}
	cases := []struct {
		name       string
		user, pass string
		form       url.Values
		status     int
		err        string
		advance    bool
	}{
		{"ok", "gateway", "gateway-secret-0123456789", base(linked), 200, "", false},
		{"ok via resource", "gateway", "gateway-secret-0123456789", with(with(base(linked), "audience", ""), "resource", "https://api.github.com/"), 200, "", false},
		{"ok client_secret_post", "", "", with(with(base(linked), "client_id", "gateway"), "client_secret", "gateway-secret-0123456789"), 200, "", false},
		{"wrong gateway secret", "gateway", "wrong", base(linked), 401, "invalid_client", false},
		{"registered confidential client", conf.ID, conf.Secret, base(linked), 400, "unauthorized_client", false},
		{"public client", "", "", with(base(linked), "client_id", c.ID), 400, "unauthorized_client", false},
		{"garbage subject", "gateway", "gateway-secret-0123456789", base("garbage"), 400, "invalid_request", false},
		{"missing subject", "gateway", "gateway-secret-0123456789", with(base(linked), "subject_token", ""), 400, "invalid_request", false},
		{"foreign subject", "gateway", "gateway-secret-0123456789", base(foreign), 400, "invalid_request", false},
		{"subject for another resource", "gateway", "gateway-secret-0123456789", base(otherResource), 400, "invalid_request", false},
		{"wrong subject type", "gateway", "gateway-secret-0123456789", with(base(linked), "subject_token_type", "urn:ietf:params:oauth:token-type:id_token"), 400, "invalid_request", false},
		{"wrong requested type", "gateway", "gateway-secret-0123456789", with(base(linked), "requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"), 400, "invalid_request", false},
		{"other audience", "gateway", "gateway-secret-0123456789", with(base(linked), "audience", "https://evil.example"), 400, "invalid_target", false},
		{"no linked token", "gateway", "gateway-secret-0123456789", base(unlinked), 400, "invalid_target", false},
		{"expired subject", "gateway", "gateway-secret-0123456789", base(expired), 400, "invalid_request", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.advance {
				e.clock.Advance(2 * time.Hour)
			}
			resp, m := e.postForm("/token", tc.form, tc.user, tc.pass)
			if resp.StatusCode != tc.status || (tc.err != "" && m["error"] != tc.err) {
				t.Fatalf("got %d %v, want %d %s", resp.StatusCode, m, tc.status, tc.err)
			}
			if tc.status == 200 && m["access_token"] != "ghp_linked_token" {
				t.Fatalf("wrong upstream token returned")
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
			}
		})
	}
}

func cloneValues(v url.Values) map[string][]string {
	out := map[string][]string{}
	for k, vals := range v {
		out[k] = append([]string(nil), vals...)
	}
	return out
}

// R4: 50 concurrent exchanges for one user with an expired GitHub token -> exactly one refresh at
// GitHub; GitHub failing -> 503 temporarily_unavailable; GitHub rejecting -> invalid_target.
func TestTokenExchangeGitHubRefreshSingleFlight(t *testing.T) {
	g := newFakeGitHub(t)
	g.refreshDelay = 100 * time.Millisecond
	e := newEnv(t, func(o *Options) { withGitHub(g)(o); o.AccessTokenTTL = 72 * time.Hour })
	c := e.register(nil)
	tok := e.githubTokens(c)
	at := tok["access_token"].(string)
	api := g.ts.URL + "/api"
	e.clock.Advance(9 * time.Hour)

	const n = 50
	var wg sync.WaitGroup
	got := make([]string, n)
	status := make([]int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, m := e.exchangeAud(at, api)
			status[i] = resp.StatusCode
			got[i], _ = m["access_token"].(string)
		}(i)
	}
	wg.Wait()
	for i := range n {
		if status[i] != 200 || got[i] != got[0] {
			t.Fatalf("exchange %d: %d %q (first %q)", i, status[i], got[i], got[0])
		}
	}
	if r := g.refreshes.Load(); r != 1 {
		t.Fatalf("GitHub refreshes: %d, want exactly 1", r)
	}

	t.Run("GitHub down", func(t *testing.T) {
		e.clock.Advance(9 * time.Hour)
		g.refreshStatus = http.StatusBadGateway
		resp, m := e.exchangeAud(at, api)
		if resp.StatusCode != http.StatusServiceUnavailable || m["error"] != "temporarily_unavailable" || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("got %d %v", resp.StatusCode, m)
		}
		g.refreshStatus = 0
		// Recovers by itself.
		if resp, m := e.exchangeAud(at, api); resp.StatusCode != 200 {
			t.Fatalf("after recovery: %d %v", resp.StatusCode, m)
		}
	})
	t.Run("refresh token rejected", func(t *testing.T) {
		e.clock.Advance(9 * time.Hour)
		g.mu.Lock()
		clear(g.refreshTokens)
		g.mu.Unlock()
		resp, m := e.exchangeAud(at, api)
		if resp.StatusCode != 400 || m["error"] != "invalid_target" {
			t.Fatalf("got %d %v", resp.StatusCode, m)
		}
	})
}

// failingStore fails every operation while down is set.
type failingStore struct {
	Store
	down atomic.Bool
}

var errDown = errors.New("store down")

func (f *failingStore) Get(ctx context.Context, b, k string) ([]byte, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.Store.Get(ctx, b, k)
}

func (f *failingStore) Update(ctx context.Context, b, k string, fn func([]byte) ([]byte, error)) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.Update(ctx, b, k, fn)
}

// R4: the token store down -> 503 with Retry-After, fast; recovers without re-login.
func TestTokenExchangeStoreDown(t *testing.T) {
	fs := &failingStore{Store: NewMemoryStore()}
	e := newEnv(t, func(o *Options) { o.Store = fs; o.EncryptionKey = make([]byte, 32) })
	c := e.register(nil)
	at := e.login(c, "sd", "ghp_store_down")["access_token"].(string)
	fs.down.Store(true)
	start := time.Now()
	resp, m := e.exchange(at, "gateway", "gateway-secret-0123456789")
	if resp.StatusCode != http.StatusServiceUnavailable || m["error"] != "temporarily_unavailable" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("store down: %d %v", resp.StatusCode, m)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("store-down answer took %v", d)
	}
	fs.down.Store(false)
	if resp, m := e.exchange(at, "gateway", "gateway-secret-0123456789"); resp.StatusCode != 200 || m["access_token"] != "ghp_store_down" {
		t.Fatalf("after recovery: %d %v", resp.StatusCode, m)
	}
}

// A GitHub refresh in flight must not write its result over an unlink or a re-link that happened
// while GitHub was answering: the stored value is replaced only if it is still the one read.
func TestGitHubRefreshDoesNotOverwriteConcurrentChange(t *testing.T) {
	const sub = "github:4242"
	tests := []struct {
		name       string
		change     func(e *testEnv) error // runs while the refresh is in flight; nil: none
		wantStored string                 // "" means no token stored
		wantStatus int                    // of the exchange that triggered the refresh
	}{
		{"no change keeps the refreshed token", nil, "refreshed", 200},
		{"unlink stays unlinked", func(e *testEnv) error {
			return e.srv.store.Delete(context.Background(), bucketGitHub, sub)
		}, "", 400},
		{"re-link with a PAT is kept", func(e *testEnv) error {
			return e.srv.saveGitHubToken(context.Background(), sub, &githubToken{AccessToken: "ghp_relinked0123456789", PersonalAccess: true})
		}, "ghp_relinked0123456789", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newFakeGitHub(t)
			g.refreshDelay = 300 * time.Millisecond
			e := newEnv(t, func(o *Options) { withGitHub(g)(o); o.AccessTokenTTL = 72 * time.Hour })
			c := e.register(nil)
			tok := e.githubTokens(c)
			before, err := e.srv.loadGitHubToken(context.Background(), sub)
			if err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(9 * time.Hour)
			done := make(chan int, 1)
			go func() {
				v := url.Values{"grant_type": {grantTokenExchange}, "subject_token": {tok["access_token"].(string)}, "subject_token_type": {tokenTypeAccessToken}}
				req, _ := http.NewRequest(http.MethodPost, e.url("/token"), strings.NewReader(v.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth("gateway", "gateway-secret-0123456789")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					done <- 0
					return
				}
				resp.Body.Close()
				done <- resp.StatusCode
			}()
			deadline := time.Now().Add(5 * time.Second)
			for g.refreshes.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if tc.change != nil {
				if err := tc.change(e); err != nil {
					t.Fatal(err)
				}
			}
			if st := <-done; st != tc.wantStatus {
				t.Errorf("exchange during refresh: status %d, want %d", st, tc.wantStatus)
			}
			after, err := e.srv.loadGitHubToken(context.Background(), sub)
			switch {
			case tc.wantStored == "":
				if !errors.Is(err, ErrNotFound) {
					t.Errorf("token present after unlink (err %v)", err)
				}
			case err != nil:
				t.Errorf("load after: %v", err)
			case tc.wantStored == "refreshed":
				if after.AccessToken == before.AccessToken {
					t.Errorf("token was not refreshed")
				}
			case after.AccessToken != tc.wantStored:
				t.Errorf("re-linked token overwritten by the refresh")
			}
		})
	}
}
