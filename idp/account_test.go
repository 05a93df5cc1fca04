package idp

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mcpgate/mcpgate/internal/testutil"
)

// A pasted personal access token is checked with GitHub's GET /user before it is stored: only a
// 200 with a numeric id and a string login links it; 401 is a 400 page, GitHub down a 503 page,
// any other answer a 502 page, and then nothing is stored. The token never appears in logs or
// responses.
func TestAccountPATCheckedWithGitHub(t *testing.T) {
	const pat = "ghp_Pasted_Secret_0123456789"
	cases := []struct {
		name     string
		status   int    // GitHub's answer status; 0 means the API is unreachable
		body     string // GitHub's answer body
		want     int    // our status
		wantText string // in our answer
	}{
		{"valid", 200, `{"id": 777, "login": "pat-owner", "name": "P"}`, http.StatusSeeOther, ""},
		{"rejected", 401, `{"message":"Bad credentials"}`, http.StatusBadRequest, "GitHub rejected this token"},
		{"github down", 0, "", http.StatusServiceUnavailable, "could not be reached"},
		{"github 500", 500, `{"message":"boom"}`, http.StatusBadGateway, "did not confirm"},
		{"github 503", 503, ``, http.StatusBadGateway, "did not confirm"},
		{"forbidden", 403, `{"message":"rate limited"}`, http.StatusBadGateway, "did not confirm"},
		{"id as string", 200, `{"id": "777", "login": "pat-owner"}`, http.StatusBadGateway, "did not confirm"},
		{"login missing", 200, `{"id": 777}`, http.StatusBadGateway, "did not confirm"},
		{"login not a string", 200, `{"id": 777, "login": 5}`, http.StatusBadGateway, "did not confirm"},
		{"not an object", 200, `[{"id": 777, "login": "x"}]`, http.StatusBadGateway, "did not confirm"},
		{"null", 200, `null`, http.StatusBadGateway, "did not confirm"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			var gotAuth atomic.Value
			gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				gotAuth.Store(r.Method + " " + r.URL.Path + " " + r.Header.Get("Authorization"))
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			t.Cleanup(gh.Close)
			api := gh.URL + "/api"
			if tc.status == 0 {
				gh.Close() // connection refused
			}
			var logs testutil.SyncBuffer
			e := newEnv(t, func(o *Options) {
				o.GitHub.APIURL = api
				o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			})
			c := e.register(nil)
			b := e.browser()
			p := newPKCE()
			q := e.getCode(b, c, p, "paster", "", nil)
			resp, tok := e.redeem(c, q.Get("code"), p.verifier, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("redeem: %d %v", resp.StatusCode, tok)
			}
			acct := b.get(e.url("/account"))
			r := b.post(e.url("/account/github-token"), url.Values{"github_token": {pat}, "csrf_token": {formValue(t, csrfRe, acct.body)}})
			if r.status != tc.want || !strings.Contains(r.body, tc.wantText) {
				t.Fatalf("paste: %d %s, want %d with %q", r.status, r.body, tc.want, tc.wantText)
			}
			if tc.status != 0 {
				if got, _ := gotAuth.Load().(string); calls.Load() != 1 || got != "GET /api/user Bearer "+pat {
					t.Fatalf("GitHub saw %d calls, last %q", calls.Load(), got)
				}
			}
			gt, err := e.srv.loadGitHubToken(context.Background(), "dev:paster")
			xresp, x := e.exchangeAud(tok["access_token"].(string), api)
			if tc.want == http.StatusSeeOther {
				if err != nil || gt.AccessToken != pat || gt.GitHubID != 777 || gt.Login != "pat-owner" || !gt.PersonalAccess {
					t.Fatalf("stored token %+v, %v", gt, err)
				}
				if xresp.StatusCode != http.StatusOK || x["access_token"] != pat {
					t.Fatalf("exchange after linking: %d %v", xresp.StatusCode, x)
				}
				if pg := b.get(e.url("/account")); !strings.Contains(pg.body, "pat-owner") || strings.Contains(pg.body, pat) {
					t.Errorf("account page after linking (must show the GitHub login, not the token): %s", pg.body)
				}
			} else {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("a token was stored after a failed check: %+v, %v", gt, err)
				}
				if xresp.StatusCode != http.StatusBadRequest || x["error"] != "invalid_target" {
					t.Fatalf("exchange without a linked token: %d %v", xresp.StatusCode, x)
				}
				if tc.status == 0 && r.header.Get("Retry-After") == "" {
					t.Errorf("503 without Retry-After")
				}
			}
			if strings.Contains(r.body, pat) || strings.Contains(r.location, pat) {
				t.Errorf("token echoed in the response")
			}
			if out := logs.String(); strings.Contains(out, pat) || strings.Contains(out, "Pasted_Secret") {
				t.Errorf("token in logs:\n%s", out)
			} else if tc.want != http.StatusSeeOther && !strings.Contains(out, "pasted token") {
				t.Errorf("failed check not logged:\n%s", out)
			}
		})
	}
}

// A user signed in with GitHub cannot paste a token of another GitHub account.
func TestAccountPATOtherGitHubAccount(t *testing.T) {
	g := newFakeGitHub(t)
	e := newEnv(t, func(o *Options) { withGitHub(g)(o); o.DevLogin = true })
	c := e.register(nil)
	b := e.browser()
	e.githubLogin(b, c, newPKCE()) // signed in as github:4242
	before, err := e.srv.loadGitHubToken(context.Background(), "github:4242")
	if err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	g.userID = 9999 // the pasted token belongs to someone else
	g.accessTokens["ghp_someone_else_1"] = true
	g.mu.Unlock()
	acct := b.get(e.url("/account"))
	r := b.post(e.url("/account/github-token"), url.Values{"github_token": {"ghp_someone_else_1"}, "csrf_token": {formValue(t, csrfRe, acct.body)}})
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "another GitHub account") {
		t.Fatalf("paste of a foreign token: %d %s", r.status, r.body)
	}
	if after, err := e.srv.loadGitHubToken(context.Background(), "github:4242"); err != nil || after.AccessToken != before.AccessToken {
		t.Fatalf("stored token changed: %v", err)
	}
}

// A token pasted on the development login form is checked with GitHub's GET /user like one pasted
// on /account: a token GitHub rejects, or a GitHub that cannot be reached, shows the form again
// with a clear error and stores nothing (no user, no token, no session); a good token is linked
// with the GitHub identity GitHub reported.
func TestDevLoginPATCheckedWithGitHub(t *testing.T) {
	const good, bad = "ghp_Good_Login_Token_0123", "ghp_Bad_Login_Token_0123"
	cases := []struct {
		name     string
		pat      string
		status   int // GitHub's answer; 0: unreachable
		want     int
		wantText string
	}{
		{"accepted", good, 200, http.StatusSeeOther, ""},
		{"rejected", bad, 401, http.StatusBadRequest, "GitHub rejected this token"},
		{"github down", good, 0, http.StatusServiceUnavailable, "could not be reached"},
		{"github error", good, 500, http.StatusBadGateway, "did not confirm"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				if r.URL.Path != "/api/user" || r.Header.Get("Authorization") != "Bearer "+good {
					http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
					return
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(`{"id": 31337, "login": "form-owner"}`))
			}))
			t.Cleanup(gh.Close)
			if tc.status == 0 {
				gh.Close()
			}
			var logs testutil.SyncBuffer
			e := newEnv(t, func(o *Options) {
				o.GitHub.APIURL = gh.URL + "/api"
				o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			})
			c := e.register(nil)
			b := e.browser()
			pg := b.follow(authorizeURL(e, c, newPKCE(), nil))
			r := b.post(e.url("/login"), url.Values{"csrf_token": {formValue(t, csrfRe, pg.body)}, "req": {formValue(t, reqRe, pg.body)},
				"username": {"former"}, "github_token": {tc.pat}})
			if r.status != tc.want || !strings.Contains(r.body, tc.wantText) {
				t.Fatalf("dev login: %d %s, want %d with %q", r.status, r.body, tc.want, tc.wantText)
			}
			if tc.status != 0 && calls.Load() != 1 {
				t.Errorf("GitHub saw %d calls, want 1", calls.Load())
			}
			gt, err := e.srv.loadGitHubToken(context.Background(), "dev:former")
			var u userRecord
			uerr := e.srv.getJSON(context.Background(), bucketUsers, "dev:former", &u)
			if tc.want == http.StatusSeeOther {
				if err != nil || gt.AccessToken != good || gt.GitHubID != 31337 || gt.Login != "form-owner" || !gt.PersonalAccess {
					t.Fatalf("stored token %+v, %v", gt, err)
				}
			} else {
				if !errors.Is(err, ErrNotFound) || !errors.Is(uerr, ErrNotFound) {
					t.Fatalf("stored after a failed check: token %v, user %v", err, uerr)
				}
				if !strings.Contains(r.body, `name="username"`) {
					t.Errorf("the login form is not shown again:\n%s", r.body)
				}
				if pg := b.get(e.url("/account")); pg.status != http.StatusFound {
					t.Errorf("signed in after a failed check: /account %d", pg.status)
				}
				if tc.status == 0 && r.header.Get("Retry-After") == "" {
					t.Errorf("503 without Retry-After")
				}
			}
			if strings.Contains(r.body, tc.pat) || strings.Contains(logs.String(), tc.pat) {
				t.Errorf("token echoed in the page or logs")
			}
		})
	}
}
