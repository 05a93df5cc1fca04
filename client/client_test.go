package client

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/client/internal/oauthtest"
)

// TestCachedTokenReuse: a second Client (a second run) uses the cached token without a browser.
func TestCachedTokenReuse(t *testing.T) {
	e := newEnv(t, oauthtest.ASOptions{}, oauthtest.ResourceOptions{})
	c, _ := e.client(t, nil)
	if _, err := c.Tools(ctxT(t)); err != nil {
		t.Fatalf("Tools: %v", err)
	}
	c2, stderr := e.client(t, func(c *Config) {
		c.OpenURL = func(string) error { t.Error("browser opened despite a cached token"); return nil }
	})
	res, err := c2.Call(ctxT(t), "list_repositories", nil)
	if err != nil {
		t.Fatalf("Call: %v", err)
	}
	if got := ResultText(res); got != "octo/alpha\nocto/beta" {
		t.Errorf("result %q", got)
	}
	if n := len(e.as.Authorizes()); n != 1 {
		t.Errorf("%d authorization requests, want 1", n)
	}
	if strings.Contains(stderr.String(), "Logged in") {
		t.Errorf("logged in again: %s", stderr)
	}
}

// TestRefresh: an expired access token is refreshed (with resource) before use, without a browser.
func TestRefresh(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	e := newEnv(t, oauthtest.ASOptions{Now: clock.Now, AccessTTL: time.Hour}, oauthtest.ResourceOptions{})
	c, _ := e.client(t, func(c *Config) { c.Now = clock.Now })
	if err := c.Login(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	st, _ := c.Status()
	if !st.Expiry.Equal(clock.Now().Add(time.Hour)) || st.Expired {
		t.Fatalf("status %+v", st)
	}
	clock.Advance(2 * time.Hour)
	before := len(e.res.Statuses())
	c2, _ := e.client(t, func(c *Config) {
		c.Now = clock.Now
		c.OpenURL = func(string) error { t.Error("browser opened although a refresh token exists"); return nil }
	})
	if st, _ := c2.Status(); !st.Expired {
		t.Fatalf("status %+v, want expired", st)
	}
	if _, err := c2.Tools(ctxT(t)); err != nil {
		t.Fatalf("Tools: %v", err)
	}
	forms := e.as.TokenForms()
	last := forms[len(forms)-1]
	if last.Get("grant_type") != "refresh_token" || last.Get("resource") != e.res.URL || last.Get("client_id") == "" {
		t.Errorf("refresh form %v", last)
	}
	for _, s := range e.res.Statuses()[before:] {
		if s == 401 {
			t.Error("the expired token was sent instead of being refreshed first")
		}
	}
	// The rotated refresh token was saved: a third run refreshes again successfully.
	clock.Advance(2 * time.Hour)
	c3, _ := e.client(t, func(c *Config) { c.Now = clock.Now; c.NoBrowser = true; c.LoginTimeout = time.Second })
	if _, err := c3.Tools(ctxT(t)); err != nil {
		t.Fatalf("Tools after the second refresh: %v", err)
	}
}

// TestMidSession401 covers a token rejected during a session: refresh once, and when the
// refresh token is dead too, a new login.
func TestMidSession401(t *testing.T) {
	e := newEnv(t, oauthtest.ASOptions{}, oauthtest.ResourceOptions{})
	c, _ := e.client(t, nil)
	if _, err := c.Tools(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	e.as.InvalidateAccessTokens()
	if _, err := c.Tools(ctxT(t)); err != nil {
		t.Fatalf("Tools after the access token died: %v", err)
	}
	if n := len(e.as.Authorizes()); n != 1 {
		t.Fatalf("%d logins, want 1 (refresh should have sufficed)", n)
	}
	forms := e.as.TokenForms()
	if forms[len(forms)-1].Get("grant_type") != "refresh_token" {
		t.Fatal("no refresh after the 401")
	}

	e.as.InvalidateAll()
	res, err := c.Call(ctxT(t), "echo", map[string]any{"text": "hi"})
	if err != nil {
		t.Fatalf("Call after all tokens died: %v", err)
	}
	if ResultText(res) != `{"text":"hi"}` {
		t.Errorf("echo %q", ResultText(res))
	}
	if n := len(e.as.Authorizes()); n != 2 {
		t.Fatalf("%d logins, want 2", n)
	}
	if st, _ := c.Status(); !st.Refreshable {
		t.Error("the new tokens were not cached")
	}
}

// TestConcurrent401SingleLogin: several requests failing at once lead to one browser login.
func TestConcurrent401SingleLogin(t *testing.T) {
	e := newEnv(t, oauthtest.ASOptions{}, oauthtest.ResourceOptions{})
	c, _ := e.client(t, nil)
	if _, err := c.Tools(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	e.as.InvalidateAll()
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Go(func() {
			_, err := c.Call(ctxT(t), "list_repositories", nil)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Call: %v", err)
		}
	}
	if n := len(e.as.Authorizes()); n != 2 {
		t.Fatalf("%d logins, want 2 (one initial, one shared recovery)", n)
	}
}

// TestStepUp: a 403 insufficient_scope re-authorizes once with the union of scopes; a server
// that keeps refusing ends in one error, not a loop.
func TestStepUp(t *testing.T) {
	t.Run("granted", func(t *testing.T) {
		e := newEnv(t, oauthtest.ASOptions{}, oauthtest.ResourceOptions{ToolScopes: map[string]string{"admin_tool": "mcp:admin"}})
		c, stderr := e.client(t, nil)
		res, err := c.Call(ctxT(t), "admin_tool", nil)
		if err != nil {
			t.Fatalf("Call: %v", err)
		}
		if ResultText(res) != "admin ok" {
			t.Errorf("result %q", ResultText(res))
		}
		az := e.as.Authorizes()
		if len(az) != 2 || az[1].Get("scope") != "mcp:read mcp:admin" {
			t.Fatalf("authorizations %v", az)
		}
		if !strings.Contains(stderr.String(), "needs more scopes (mcp:read mcp:admin)") {
			t.Errorf("stderr %s", stderr)
		}
		if st, _ := c.Status(); strings.Join(st.Scopes, " ") != "mcp:read mcp:admin" {
			t.Errorf("scopes %v", st.Scopes)
		}
	})
	t.Run("withheld", func(t *testing.T) {
		e := newEnv(t, oauthtest.ASOptions{WithheldScopes: []string{"mcp:admin"}}, oauthtest.ResourceOptions{ToolScopes: map[string]string{"admin_tool": "mcp:admin"}})
		c, _ := e.client(t, nil)
		_, err := c.Call(ctxT(t), "admin_tool", nil)
		mustContain(t, err, "answered 403 Forbidden: insufficient_scope")
		if n := len(e.as.Authorizes()); n != 2 {
			t.Fatalf("%d logins, want 2 (one step-up only)", n)
		}
		// The next operation works again with the granted scopes.
		if _, err := c.Call(ctxT(t), "list_repositories", nil); err != nil {
			t.Fatalf("Call after a failed step-up: %v", err)
		}
	})
}

func TestLogout(t *testing.T) {
	e := newEnv(t, oauthtest.ASOptions{}, oauthtest.ResourceOptions{})
	c, stderr := e.client(t, nil)
	if err := c.Login(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	rec, _ := c.cachedToken()
	at := rec.AccessToken
	if _, ok := e.as.Validate(at); !ok {
		t.Fatal("fresh token invalid")
	}
	if err := c.Logout(ctxT(t)); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if got := e.as.Revoked(); strings.Join(got, ",") != "refresh_token,access_token" {
		t.Errorf("revocations %v, want refresh_token then access_token", got)
	}
	if _, ok := e.as.Validate(at); ok {
		t.Error("the access token still works at the server")
	}
	if st, _ := c.Status(); st.LoggedIn {
		t.Error("still logged in")
	}
	entries, _ := os.ReadDir(filepath.Join(e.cacheDir, "tokens"))
	if len(entries) != 0 {
		t.Errorf("token files left: %v", entries)
	}
	if !strings.Contains(stderr.String(), "Logged out of") {
		t.Errorf("stderr %s", stderr)
	}
	// Logging out again is harmless.
	if err := c.Logout(ctxT(t)); err != nil {
		t.Fatalf("second Logout: %v", err)
	}
}

func TestLogoutServerDown(t *testing.T) {
	e := newEnv(t, oauthtest.ASOptions{}, oauthtest.ResourceOptions{})
	c, stderr := e.client(t, nil)
	if err := c.Login(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	e.as.Server.Close()
	c2, _ := e.client(t, func(cfg *Config) { cfg.Stderr = stderr })
	if err := c2.Logout(ctxT(t)); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if !strings.Contains(stderr.String(), "deleting the tokens locally only") {
		t.Errorf("no warning: %s", stderr)
	}
	if st, _ := c2.Status(); st.LoggedIn {
		t.Error("tokens not deleted")
	}
}

// TestNoTokenInOutput: neither progress output nor Status nor errors contain token material.
func TestNoTokenInOutput(t *testing.T) {
	e := newEnv(t, oauthtest.ASOptions{}, oauthtest.ResourceOptions{})
	c, stderr := e.client(t, nil)
	if _, err := c.Tools(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	e.as.InvalidateAccessTokens()
	if _, err := c.Tools(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	rec, _ := c.cachedToken()
	st, _ := c.Status()
	b, _ := json.Marshal(st)
	for _, secret := range []string{rec.AccessToken, rec.RefreshToken} {
		if strings.Contains(stderr.String(), secret) || strings.Contains(string(b), secret) {
			t.Fatal("token material in output")
		}
	}
	if strings.Contains(stderr.String(), "at-") || strings.Contains(stderr.String(), "rt-") {
		t.Fatalf("token-looking text in output: %s", stderr)
	}
}
