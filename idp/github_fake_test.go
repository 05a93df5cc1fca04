package idp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeGitHub implements the documented shapes of GitHub's OAuth web flow and GET /user:
//
//	GET  /login/oauth/authorize     -> 302 redirect_uri?code=...&state=... (auto-approves)
//	POST /login/oauth/access_token  -> {"access_token","expires_in","refresh_token",...}, errors
//	                                   as 200 {"error": ...} like GitHub
//	GET  /api/user                  -> {"id","login","name"}
type fakeGitHub struct {
	ts           *httptest.Server
	clientID     string
	clientSecret string
	userID       int64
	login        string

	mu            sync.Mutex
	codes         map[string]bool
	refreshTokens map[string]bool
	accessTokens  map[string]bool
	n             int

	codeExchanges atomic.Int64
	refreshes     atomic.Int64
	refreshDelay  time.Duration
	refreshStatus int // if non-zero, refresh answers this HTTP status
	expiresIn     int64
}

func newFakeGitHub(t *testing.T) *fakeGitHub {
	g := &fakeGitHub{
		clientID: "gh-client", clientSecret: "gh-secret", userID: 4242, login: "octo",
		codes: map[string]bool{}, refreshTokens: map[string]bool{}, accessTokens: map[string]bool{},
		expiresIn: 8 * 3600,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", g.authorize)
	mux.HandleFunc("POST /login/oauth/access_token", g.token)
	mux.HandleFunc("GET /api/user", g.user)
	g.ts = httptest.NewServer(mux)
	t.Cleanup(g.ts.Close)
	return g
}

func (g *fakeGitHub) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != g.clientID {
		http.Error(w, "bad client", 400)
		return
	}
	g.mu.Lock()
	g.n++
	code := fmt.Sprintf("ghcode-%d", g.n)
	g.codes[code] = true
	g.mu.Unlock()
	u, _ := url.Parse(q.Get("redirect_uri"))
	v := url.Values{"code": {code}, "state": {q.Get("state")}}
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (g *fakeGitHub) issue() map[string]any {
	g.n++
	at := fmt.Sprintf("ghu_access_%d", g.n)
	rt := fmt.Sprintf("ghr_refresh_%d", g.n)
	g.accessTokens[at] = true
	g.refreshTokens[rt] = true
	return map[string]any{"access_token": at, "token_type": "bearer", "scope": "", "expires_in": g.expiresIn,
		"refresh_token": rt, "refresh_token_expires_in": 15897600}
}

func (g *fakeGitHub) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Accept") != "application/json" {
		http.Error(w, "want Accept: application/json", 400)
		return
	}
	if r.PostForm.Get("client_id") != g.clientID || r.PostForm.Get("client_secret") != g.clientSecret {
		json.NewEncoder(w).Encode(map[string]any{"error": "incorrect_client_credentials"})
		return
	}
	if r.PostForm.Get("grant_type") == "refresh_token" {
		g.refreshes.Add(1)
		time.Sleep(g.refreshDelay)
		if g.refreshStatus != 0 {
			w.WriteHeader(g.refreshStatus)
			return
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		rt := r.PostForm.Get("refresh_token")
		if !g.refreshTokens[rt] {
			json.NewEncoder(w).Encode(map[string]any{"error": "bad_refresh_token"})
			return
		}
		delete(g.refreshTokens, rt) // GitHub rotates refresh tokens
		json.NewEncoder(w).Encode(g.issue())
		return
	}
	g.codeExchanges.Add(1)
	g.mu.Lock()
	defer g.mu.Unlock()
	code := r.PostForm.Get("code")
	if !g.codes[code] {
		json.NewEncoder(w).Encode(map[string]any{"error": "bad_verification_code"})
		return
	}
	delete(g.codes, code)
	json.NewEncoder(w).Encode(g.issue())
}

func (g *fakeGitHub) user(w http.ResponseWriter, r *http.Request) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	g.mu.Lock()
	ok := g.accessTokens[tok]
	g.mu.Unlock()
	if !ok {
		http.Error(w, `{"message":"Bad credentials"}`, 401)
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"id": g.userID, "login": g.login, "name": "The Octocat"})
}

func withGitHub(g *fakeGitHub) func(*Options) {
	return func(o *Options) {
		o.DevLogin = false
		o.GitHub = GitHubConfig{ClientID: g.clientID, ClientSecret: g.clientSecret, BaseURL: g.ts.URL, APIURL: g.ts.URL + "/api"}
	}
}
