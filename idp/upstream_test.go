package idp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fakeOP is an OpenID provider on httptest that mints its ID tokens here, so a test can make
// them wrong in one precise way (mode).
type fakeOP struct {
	t        *testing.T
	ts       *httptest.Server
	key      *rsa.PrivateKey // published in the JWKS
	otherKey *rsa.PrivateKey // not published
	now      func() time.Time
	clientID string

	mu       sync.Mutex
	mode     string         // "", "nonce", "aud", "expired", "unknown-key", "alg-none", "iss"
	claims   map[string]any // extra ID token claims (email, groups...)
	sub      string
	codes    map[string]fakeCode
	disabled bool // refresh grant answers invalid_grant
	// refreshFault, if set, is the refresh grant's answer instead: status and body
	// (a 503, a 429, invalid_client).
	refreshFault *[2]string
	refreshN     int
	// rotating: each refresh token works once (issued ones are in live), like providers that
	// rotate refresh tokens; refreshDelay holds every refresh answer back.
	rotating     bool
	live         map[string]bool
	refreshDelay time.Duration
}

type fakeCode struct{ nonce, challenge string }

// newRefreshToken issues a refresh token (op.mu held).
func (op *fakeOP) newRefreshToken() string {
	rt := "up-rt-" + randomToken()
	if op.live == nil {
		op.live = map[string]bool{}
	}
	op.live[rt] = true
	return rt
}

func newFakeOP(t *testing.T) *fakeOP {
	t.Helper()
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	k2, _ := rsa.GenerateKey(rand.Reader, 2048)
	op := &fakeOP{t: t, key: k1, otherKey: k2, now: time.Now, clientID: "mcpgate", sub: "user-1",
		codes: map[string]fakeCode{}, claims: map[string]any{"email": "alice@corp.example", "email_verified": true, "name": "Alice", "groups": []string{"eng"}}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss := op.ts.URL
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": iss + "/token",
			"jwks_uri": iss + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]any{
			"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
			"n": base64.RawURLEncoding.EncodeToString(k1.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k1.E)).Bytes()),
		}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != op.clientID || q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" || q.Get("state") == "" {
			http.Error(w, "bad authorization request", http.StatusBadRequest)
			return
		}
		code := randomToken()
		op.mu.Lock()
		op.codes[code] = fakeCode{nonce: q.Get("nonce"), challenge: q.Get("code_challenge")}
		back := url.Values{"code": {code}, "state": {q.Get("state")}}
		if op.mode == "iss-param" {
			back.Set("iss", "https://other-op.example")
		}
		if op.mode == "prompt" && q.Get("prompt") != "login" {
			back = url.Values{"error": {"login_required"}, "state": {q.Get("state")}}
		}
		op.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+back.Encode(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		op.mu.Lock()
		delay := op.refreshDelay
		op.mu.Unlock()
		if r.PostForm.Get("grant_type") == "refresh_token" {
			time.Sleep(delay)
		}
		op.mu.Lock()
		defer op.mu.Unlock()
		if r.PostForm.Get("grant_type") == "refresh_token" {
			op.refreshN++
			if f := op.refreshFault; f != nil {
				var st int
				_, _ = fmt.Sscan(f[0], &st)
				w.WriteHeader(st)
				_, _ = w.Write([]byte(f[1]))
				return
			}
			if op.disabled {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
				return
			}
			if op.rotating {
				if !op.live[r.PostForm.Get("refresh_token")] {
					w.WriteHeader(http.StatusBadRequest)
					_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
					return
				}
				delete(op.live, r.PostForm.Get("refresh_token"))
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "up-at2", "token_type": "Bearer", "refresh_token": op.newRefreshToken()})
			return
		}
		c, ok := op.codes[r.PostForm.Get("code")]
		delete(op.codes, r.PostForm.Get("code"))
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token": "up-at", "token_type": "Bearer", "refresh_token": op.newRefreshToken(),
			"id_token": op.idToken(c.nonce),
		})
	})
	op.ts = httptest.NewServer(mux)
	t.Cleanup(op.ts.Close)
	return op
}

// idToken mints the ID token for the current mode; op.mu is held.
func (op *fakeOP) idToken(nonce string) string {
	now := op.now()
	c := jwt.MapClaims{"iss": op.ts.URL, "sub": op.sub, "aud": op.clientID, "nonce": nonce,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	for k, v := range op.claims {
		c[k] = v
	}
	key, kid := op.key, "k1"
	switch op.mode {
	case "nonce":
		c["nonce"] = "another-nonce"
	case "aud":
		c["aud"] = "someone-else"
	case "iss":
		c["iss"] = "https://evil.example"
	case "at_hash":
		c["at_hash"] = "bm90IHRoZSBoYXNo"
	case "expired":
		c["iat"], c["exp"] = now.Add(-time.Hour).Unix(), now.Add(-30*time.Minute).Unix()
	case "unknown-key":
		key, kid = op.otherKey, "k2"
	case "alg-none":
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, c)
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			op.t.Fatal(err)
		}
		return s
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		op.t.Fatal(err)
	}
	return s
}

func (op *fakeOP) set(f func(op *fakeOP)) {
	op.mu.Lock()
	f(op)
	op.mu.Unlock()
}

// newUpstreamEnv starts the IdP with op as its only way to sign in (no dev login, no GitHub
// sign-in), mod adjusting the upstream.
func newUpstreamEnv(t *testing.T, op *fakeOP, mod func(*UpstreamOIDC)) *testEnv {
	u := UpstreamOIDC{Name: "corp", DisplayName: "Corp SSO", Issuer: op.ts.URL, ClientID: op.clientID, ClientSecret: "up-secret"}
	if mod != nil {
		mod(&u)
	}
	e := newEnv(t, func(o *Options) {
		o.DevLogin = false
		o.Upstreams = []UpstreamOIDC{u}
	})
	op.now = e.clock.Now
	return e
}

// followAll follows redirects across hosts (the IdP and the provider) and stops at the first
// redirect to stop (the MCP client's redirect URI, where nothing listens) or at a page.
func (b *browser) followAll(u, stop string) page {
	b.t.Helper()
	p := b.get(u)
	for i := 0; i < 15 && p.location != "" && !strings.HasPrefix(p.location, stop); i++ {
		p = b.get(p.location)
	}
	return p
}

// upstreamCode runs authorize → provider → callback → consent and returns the final page (the
// redirect to the client on success).
func upstreamCode(e *testEnv, b *browser, c testClient, p pkce) page {
	e.t.Helper()
	pg := b.followAll(authorizeURL(e, c, p, nil), c.RedirectURI)
	if strings.Contains(pg.body, `value="approve"`) {
		pg = b.approve(pg)
	}
	return pg
}

func TestUpstreamLoginHappyPath(t *testing.T) {
	op := newFakeOP(t)
	e := newUpstreamEnv(t, op, func(u *UpstreamOIDC) {
		u.AllowedEmailDomains = []string{"corp.example"}
		u.TokenClaims = []string{"email", "groups"}
	})
	c := e.register(nil)
	p := newPKCE()
	b := e.browser()
	// The login page goes straight to the only provider.
	lp := b.get(authorizeURL(e, c, p, nil)) // → /consent → /login → the provider
	for i := 0; i < 3 && strings.HasPrefix(lp.location, e.url("/")) && !strings.HasPrefix(lp.location, e.url("/login/oidc/")); i++ {
		lp = b.get(lp.location)
	}
	if lp.status != http.StatusFound || !strings.HasPrefix(lp.location, e.url("/login/oidc/corp")) {
		t.Fatalf("login page: want redirect to the upstream, got %d %q", lp.status, lp.location)
	}
	pg := upstreamCode(e, b, c, p)
	if pg.status != http.StatusFound || !strings.HasPrefix(pg.location, c.RedirectURI) {
		t.Fatalf("want redirect to client, got %d %s", pg.status, pg.body)
	}
	loc, _ := url.Parse(pg.location)
	resp, tok := e.redeem(c, loc.Query().Get("code"), p.verifier, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("redeem: %d %v", resp.StatusCode, tok)
	}
	wantSub := oidcSubject(op.ts.URL, "user-1")
	var claims map[string]any
	parts := strings.Split(tok["access_token"].(string), ".")
	b64, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(b64, &claims)
	if claims["sub"] != wantSub || claims["email"] != "alice@corp.example" {
		t.Fatalf("access token claims: %v", claims)
	}
	if g, _ := claims["groups"].([]any); len(g) != 1 || g[0] != "eng" {
		t.Fatalf("groups claim: %v", claims["groups"])
	}
	if _, has := claims["name"]; has {
		t.Fatalf("name not configured in TokenClaims but present: %v", claims)
	}
	req, _ := http.NewRequest(http.MethodGet, e.url("/userinfo"), nil)
	req.Header.Set("Authorization", "Bearer "+tok["access_token"].(string))
	_, ui := doJSON(t, req)
	if ui["sub"] != wantSub || ui["email"] != "alice@corp.example" || ui["name"] != "Alice" {
		t.Fatalf("userinfo: %v", ui)
	}

	// Once the user has linked GitHub, the gateway's token exchange hands that token on.
	if err := e.srv.saveGitHubToken(t.Context(), wantSub, &githubToken{AccessToken: "gho_linked_for_alice"}); err != nil {
		t.Fatal(err)
	}
	resp, ex := e.postForm("/token", url.Values{
		"grant_type": {grantTokenExchange}, "subject_token": {tok["access_token"].(string)},
		"subject_token_type": {tokenTypeAccessToken},
	}, "gateway", "gateway-secret-0123456789")
	if resp.StatusCode != 200 || ex["access_token"] != "gho_linked_for_alice" {
		t.Fatalf("exchange for an upstream user: %d %v", resp.StatusCode, ex)
	}

	// The same upstream subject with another email is the same user.
	op.set(func(op *fakeOP) { op.claims["email"] = "alice.renamed@corp.example" })
	p2 := newPKCE()
	pg = upstreamCode(e, e.browser(), c, p2)
	loc, _ = url.Parse(pg.location)
	_, tok2 := e.redeem(c, loc.Query().Get("code"), p2.verifier, nil)
	parts = strings.Split(tok2["access_token"].(string), ".")
	b64, _ = base64.RawURLEncoding.DecodeString(parts[1])
	claims = nil
	_ = json.Unmarshal(b64, &claims)
	if claims["sub"] != wantSub {
		t.Fatalf("sub changed with the email: %v", claims["sub"])
	}

	// Refresh works while the upstream refreshes, and ends when it refuses (account disabled).
	rt := tok2["refresh_token"].(string)
	resp, m := e.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.ID}}, "", "")
	if resp.StatusCode != 200 {
		t.Fatalf("refresh: %d %v", resp.StatusCode, m)
	}
	op.set(func(op *fakeOP) { op.disabled = true })
	resp, m = e.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {m["refresh_token"].(string)}, "client_id": {c.ID}}, "", "")
	if resp.StatusCode != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("refresh after upstream disable: %d %v", resp.StatusCode, m)
	}
	op.set(func(op *fakeOP) { op.disabled = false })
	resp, m = e.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.ID}}, "", "")
	if resp.StatusCode != 400 {
		t.Fatalf("the revoked family refreshed again: %d %v", resp.StatusCode, m)
	}
}

// TestUpstreamRefreshFaults: a provider that is down, throttles or refuses this server's client
// on refresh neither ends the user's grant nor spends the refresh token: once it answers again,
// the same refresh token works, even after the rotation grace window.
func TestUpstreamRefreshFaults(t *testing.T) {
	for _, fault := range [][2]string{
		{"503", `{"error":"temporarily_unavailable"}`},
		{"429", `{"error":"slow_down"}`},
		{"401", `{"error":"invalid_client"}`},
		{"400", `{"error":"unauthorized_client"}`},
	} {
		t.Run(fault[0], func(t *testing.T) {
			op := newFakeOP(t)
			e := newUpstreamEnv(t, op, nil)
			c := e.register(nil)
			p := newPKCE()
			pg := upstreamCode(e, e.browser(), c, p)
			loc, _ := url.Parse(pg.location)
			_, tok := e.redeem(c, loc.Query().Get("code"), p.verifier, nil)
			rt := tok["refresh_token"].(string)
			op.set(func(op *fakeOP) { op.refreshFault = &fault })
			resp, m := e.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.ID}}, "", "")
			if resp.StatusCode != http.StatusServiceUnavailable || m["error"] != "temporarily_unavailable" {
				t.Fatalf("refresh while the provider answers %s: %d %v, want 503 temporarily_unavailable", fault[0], resp.StatusCode, m)
			}
			op.set(func(op *fakeOP) { op.refreshFault = nil })
			e.clock.Advance(time.Minute) // well past RefreshGrace
			resp, m = e.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.ID}}, "", "")
			if resp.StatusCode != 200 {
				t.Fatalf("the same refresh token once the provider answers again: %d %v", resp.StatusCode, m)
			}
		})
	}
}

// TestUpstreamBadIDTokens: every wrong ID token ends on an error page with no session and no user.
func TestUpstreamBadIDTokens(t *testing.T) {
	for _, mode := range []string{"nonce", "aud", "iss", "expired", "unknown-key", "alg-none", "at_hash"} {
		t.Run(mode, func(t *testing.T) {
			op := newFakeOP(t)
			e := newUpstreamEnv(t, op, nil)
			op.set(func(op *fakeOP) { op.mode = mode })
			c := e.register(nil)
			b := e.browser()
			pg := upstreamCode(e, b, c, newPKCE())
			if pg.status != http.StatusBadGateway || !strings.Contains(pg.body, "could not be verified") {
				t.Fatalf("want 502 verification page, got %d %s", pg.status, pg.body)
			}
			assertNoUser(t, e)
			if p := b.get(e.url("/account")); p.status != http.StatusFound {
				t.Fatalf("a session exists after a bad ID token: %d", p.status)
			}
		})
	}
}

func assertNoUser(t *testing.T, e *testEnv) {
	t.Helper()
	for _, bk := range []string{bucketUsers, bucketSessions, bucketUpstream} {
		n, err := e.srv.store.Count(t.Context(), bk)
		if err != nil || n != 0 {
			t.Fatalf("bucket %s holds %d records (err %v), want none", bk, n, err)
		}
	}
}

func TestUpstreamPolicy(t *testing.T) {
	cases := []struct {
		name   string
		mod    func(*UpstreamOIDC)
		claims map[string]any
		ok     bool
	}{
		{"domain allowed", func(u *UpstreamOIDC) { u.AllowedEmailDomains = []string{"corp.example"} }, nil, true},
		{"other domain", func(u *UpstreamOIDC) { u.AllowedEmailDomains = []string{"corp.example"} }, map[string]any{"email": "mallory@evil.example"}, false},
		{"unverified email", func(u *UpstreamOIDC) { u.AllowedEmailDomains = []string{"corp.example"} }, map[string]any{"email_verified": false}, false},
		{"suffix is not the domain", func(u *UpstreamOIDC) { u.AllowedEmailDomains = []string{"corp.example"} }, map[string]any{"email": "m@evilcorp.example"}, false},
		{"user by sub", func(u *UpstreamOIDC) { u.AllowedUsers = []string{"user-1"} }, map[string]any{"email": "x@evil.example"}, true},
		{"user not listed", func(u *UpstreamOIDC) { u.AllowedUsers = []string{"bob@corp.example"} }, nil, false},
		{"group required", func(u *UpstreamOIDC) { u.RequiredGroups = []string{"admins", "eng"} }, nil, true},
		{"group missing", func(u *UpstreamOIDC) { u.RequiredGroups = []string{"admins"} }, nil, false},
		{"claim required", func(u *UpstreamOIDC) { u.RequiredClaims = map[string]string{"tid": "t1"} }, map[string]any{"tid": "t1"}, true},
		{"claim wrong", func(u *UpstreamOIDC) { u.RequiredClaims = map[string]string{"tid": "t1"} }, map[string]any{"tid": "t2"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			op := newFakeOP(t)
			for k, v := range tc.claims {
				op.claims[k] = v
			}
			e := newUpstreamEnv(t, op, tc.mod)
			c := e.register(nil)
			pg := upstreamCode(e, e.browser(), c, newPKCE())
			if tc.ok {
				if pg.status != http.StatusFound || !strings.HasPrefix(pg.location, c.RedirectURI) {
					t.Fatalf("want allowed, got %d %s", pg.status, pg.body)
				}
				return
			}
			if pg.status != http.StatusForbidden || !strings.Contains(pg.body, "not allowed") {
				t.Fatalf("want 403 page, got %d %s", pg.status, pg.body)
			}
			assertNoUser(t, e)
		})
	}
}

func TestUpstreamDown(t *testing.T) {
	op := newFakeOP(t)
	e := newUpstreamEnv(t, op, nil)
	op.ts.Close()
	c := e.register(nil)
	pg := upstreamCode(e, e.browser(), c, newPKCE())
	if pg.status != http.StatusBadGateway || !strings.Contains(pg.body, "could not be reached") {
		t.Fatalf("want 502 page, got %d %s", pg.status, pg.body)
	}
	assertNoUser(t, e)
	if n, _ := e.srv.store.Count(t.Context(), bucketStates); n != 0 {
		t.Fatalf("login state stored for a provider that is down: %d", n)
	}
}

func TestUpstreamStateChecks(t *testing.T) {
	op := newFakeOP(t)
	e := newUpstreamEnv(t, op, nil)
	b := e.browser()
	// A callback without this browser's state cookie is refused.
	if p := b.get(e.url("/oidc/corp/callback?code=x&state=y")); p.status != http.StatusBadRequest {
		t.Fatalf("callback without state: %d", p.status)
	}
	// Replaying a callback URL (same code and state) is refused: the state is single use.
	start := b.get(e.url("/login/oidc/corp"))
	atOP := b.get(start.location)
	cb := atOP.location
	if p := b.get(cb); p.status != http.StatusSeeOther {
		t.Fatalf("first callback: %d %s", p.status, p.body)
	}
	if p := b.get(cb); p.status != http.StatusBadRequest {
		t.Fatalf("replayed callback: %d", p.status)
	}
	// An unknown provider name is a 404.
	if p := b.get(e.url("/login/oidc/nope")); p.status != http.StatusNotFound {
		t.Fatalf("unknown provider: %d", p.status)
	}
}

func TestUpstreamOptions(t *testing.T) {
	for _, u := range []UpstreamOIDC{
		{Name: "Bad Name", Issuer: "https://x.example", ClientID: "c"},
		{Name: "ok", Issuer: "not a url", ClientID: "c"},
		{Name: "ok", Issuer: "https://x.example"},
		{Name: "ok", Issuer: "https://x.example", ClientID: "c", TokenClaims: []string{"phone"}},
	} {
		o := Options{Issuer: "https://idp.example", Upstreams: []UpstreamOIDC{u}}
		if err := o.setDefaults(); err == nil {
			t.Errorf("%+v accepted", u)
		}
	}
	o := Options{Issuer: "https://idp.example", Upstreams: []UpstreamOIDC{{Name: "a", Issuer: "https://x.example", ClientID: "c"}, {Name: "a", Issuer: "https://y.example", ClientID: "c"}}}
	if err := o.setDefaults(); err == nil {
		t.Error("duplicate upstream names accepted")
	}
	o = Options{Issuer: "https://idp.example", Upstreams: []UpstreamOIDC{{Name: "a", Issuer: "https://x.example", ClientID: "c"}}}
	if err := o.setDefaults(); err != nil {
		t.Fatalf("upstream alone (no GitHub, no dev login) refused: %v", err)
	}
	if got := o.Upstreams[0].Scopes; strings.Join(got, " ") != "openid email profile" {
		t.Errorf("default scopes %v", got)
	}
}

// A user of the company IdP links GitHub from the consent page at first use, comes back to the
// same authorization, and the gateway's exchange hands on that GitHub token. GitHub is link-only:
// the login page still goes straight to the company IdP, and GitHub sign-in is refused.
func TestUpstreamLinkGitHubAtConsent(t *testing.T) {
	op := newFakeOP(t)
	g := newFakeGitHub(t)
	e := newEnv(t, func(o *Options) {
		withGitHub(g)(o)
		o.GitHub.LinkOnly = true
		o.Upstreams = []UpstreamOIDC{{Name: "corp", Issuer: op.ts.URL, ClientID: op.clientID, ClientSecret: "s"}}
	})
	op.now = e.clock.Now
	if p := e.browser().get(e.url("/login/github")); p.status != http.StatusNotFound {
		t.Fatalf("GitHub sign-in with link_only: %d", p.status)
	}
	c := e.register(nil)
	p := newPKCE()
	b := e.browser()
	pg := b.followAll(authorizeURL(e, c, p, nil), c.RedirectURI)
	m := regexp.MustCompile(`href="([^"]*/login/github\?link=1[^"]*)"`).FindStringSubmatch(pg.body)
	if pg.status != 200 || m == nil {
		t.Fatalf("consent page without a GitHub link offer: %d %s", pg.status, pg.body)
	}
	back := b.followAll(strings.ReplaceAll(m[1], "&amp;", "&"), e.url("/consent"))
	if !strings.HasPrefix(back.location, e.url("/consent?req=")) {
		t.Fatalf("after linking: want the consent page again, got %d %q", back.status, back.location)
	}
	pg = b.get(back.location)
	if strings.Contains(pg.body, "/login/github?link=1") {
		t.Fatal("link offered again after linking")
	}
	pg = b.approve(pg)
	loc, _ := url.Parse(pg.location)
	resp, tok := e.redeem(c, loc.Query().Get("code"), p.verifier, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("redeem: %d %v", resp.StatusCode, tok)
	}
	resp, ex := e.postForm("/token", url.Values{
		"grant_type": {grantTokenExchange}, "subject_token": {tok["access_token"].(string)},
		"subject_token_type": {tokenTypeAccessToken},
	}, "gateway", "gateway-secret-0123456789")
	if resp.StatusCode != 200 || ex["access_token"] == "" {
		t.Fatalf("exchange: %d %v", resp.StatusCode, ex)
	}
}

// A response naming another issuer (RFC 9207 iss) is refused before the code is used;
// prompt=login at /authorize reaches the provider as prompt=login.
func TestUpstreamResponseChecks(t *testing.T) {
	op := newFakeOP(t)
	e := newUpstreamEnv(t, op, nil)
	c := e.register(nil)
	op.set(func(op *fakeOP) { op.mode = "iss-param" })
	pg := upstreamCode(e, e.browser(), c, newPKCE())
	if pg.status != http.StatusBadRequest || !strings.Contains(pg.body, "another provider") {
		t.Fatalf("iss mismatch: %d %s", pg.status, pg.body)
	}
	assertNoUser(t, e)

	op.set(func(op *fakeOP) { op.mode = "prompt" })
	pg = e.browser().followAll(authorizeURL(e, c, newPKCE(), url.Values{"prompt": {"login"}}), c.RedirectURI)
	if strings.Contains(pg.body, "cancelled") || !strings.Contains(pg.body, `value="approve"`) {
		t.Fatalf("prompt=login not passed on: %d %s", pg.status, pg.body)
	}
}

// Each sign-in started at GitHub or an upstream provider stores a login state until it ends (and
// an upstream start may run discovery), so one address may start only AuthorizeRateLimit of them
// per window; beyond that a 429 page, nothing stored and nothing fetched.
func TestLoginStartRateLimitPerAddress(t *testing.T) {
	op := newFakeOP(t)
	e := newEnv(t, func(o *Options) {
		o.AuthorizeRateLimit = 2
		o.GitHub.ClientID, o.GitHub.ClientSecret = "gh-client", "gh-secret"
		o.Upstreams = []UpstreamOIDC{{Name: "corp", DisplayName: "Corp SSO", Issuer: op.ts.URL, ClientID: op.clientID, ClientSecret: "up-secret"}}
	})
	op.now = e.clock.Now
	get := func(path, addr string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = addr
		req.Header.Set("X-Forwarded-For", "203.0.113.50") // never consulted
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		return rec
	}
	const a, b = "198.51.100.1:1000", "198.51.100.2:1000"
	tests := []struct {
		path, addr string
		advance    time.Duration
		want       int
	}{
		{"/login/oidc/corp", a, 0, http.StatusFound},
		{"/login/github", a, 0, http.StatusFound},
		{"/login/oidc/corp", a, 20 * time.Second, http.StatusTooManyRequests},
		{"/login/github", a, 0, http.StatusTooManyRequests},
		{"/login/oidc/corp", b, 0, http.StatusFound},
		{"/login/github", a, 41 * time.Second, http.StatusFound},
	}
	for i, tc := range tests {
		e.clock.Advance(tc.advance)
		rec := get(tc.path, tc.addr)
		if rec.Code != tc.want {
			t.Fatalf("request %d (%s from %s): %d, want %d: %s", i, tc.path, tc.addr, rec.Code, tc.want, rec.Body)
		}
		if rec.Code == http.StatusTooManyRequests {
			if rec.Header().Get("Retry-After") != "40" || !strings.Contains(rec.Body.String(), "Wait 40 seconds") ||
				rec.Header().Get("Location") != "" || rec.Header().Get("Set-Cookie") != "" {
				t.Errorf("429 page: headers %v body %q", rec.Header(), rec.Body.String())
			}
		}
	}
	if n, _ := e.srv.store.Count(context.Background(), bucketStates); n != 4 {
		t.Errorf("%d login states stored, want 4", n)
	}
}
