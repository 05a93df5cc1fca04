package keycloaktest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/mcpgate/mcpgate/client"
	"github.com/mcpgate/mcpgate/internal/caddyrun"
	"github.com/mcpgate/mcpgate/mcpbackend"
	"github.com/mcpgate/mcpgate/mcpbackend/githubfake"
)

// The bundled IdP (mcp_idp) with the shared Keycloak as its only way to sign in (issue 18,
// "the real Keycloak ... as an upstream too"): Keycloak is an OpenID provider nobody here wrote,
// met exactly as a company's IdP would be. One Caddy runs two sites on free loopback ports:
//
//	http://127.0.0.1:<idp>  mcp_idp { oidc keycloak { issuer <realm mcp> ... } github { link_only } }
//	http://127.0.0.1:<gw>   mcp_auth (issuer: the IdP; upstream_token token_exchange at the IdP)
//	                        → reverse_proxy to the demo MCP backend, whose GitHub is the shared fake
//
// The realm gets, at test time through the admin API, a confidential client for mcp_idp
// (redirect URI <idp>/oidc/keycloak/callback) and a password user with a verified email in
// the allowed domain; the realm's carol (carol@example.com) is outside it.

// idpUpstreamDomain is the only email domain mcp_idp lets in from Keycloak.
const idpUpstreamDomain = "corp.example"

// Olivia is the Keycloak user of the allowed domain, created for the test.
const (
	oliviaUser  = "olivia"
	oliviaEmail = "olivia@" + idpUpstreamDomain
)

// idpSetup is one loaded Caddy config with mcp_idp and mcp_auth, and what the test made for it.
type idpSetup struct {
	gateway               // mcpURL and Caddy's log
	issuer         string // mcp_idp's issuer
	kcClient       string // mcp_idp's confidential client at Keycloak
	kcSecret       string // its secret
	gwSecret       string // the gateway's exchange_client secret at mcp_idp
	oliviaID       string // olivia's Keycloak user id: the upstream sub
	backendUsersMu sync.Mutex
	backendUsers   []string // X-Mcpgate-User of every request that reached the backend
}

func randomSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// createIDPClient adds to the realm the confidential client that mcp_idp signs in with, as an
// administrator would for any OpenID relying party: standard flow only, client secret, the one
// redirect URI of mcp_idp's callback. Deleted when the test ends.
func createIDPClient(t *testing.T, clientID, secret, redirectURI string) {
	t.Helper()
	createRealmClient(t, map[string]any{
		"clientId": clientID, "enabled": true, "publicClient": false,
		"clientAuthenticatorType": "client-secret", "secret": secret,
		"standardFlowEnabled": true, "implicitFlowEnabled": false, "directAccessGrantsEnabled": false,
		"serviceAccountsEnabled": false, "redirectUris": []string{redirectURI},
	})
}

// createUser adds a password user with a verified email (and the names Keycloak's user profile
// requires, so no "update profile" page interrupts the sign-in) and returns its id, the sub of
// its tokens. Deleted when the test ends.
func createUser(t *testing.T, username, email, password string) string {
	t.Helper()
	ctx := context.Background()
	kc := shared.kc
	tok, err := kc.AdminToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := kc.Admin(ctx, tok, http.MethodPost, "/"+RealmName+"/users", map[string]any{
		"username": username, "enabled": true, "email": email, "emailVerified": true,
		"firstName": "Olivia", "lastName": "Upstream",
		"credentials": []map[string]any{{"type": "password", "value": password, "temporary": false}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	id := userID(t, username)
	t.Cleanup(func() {
		if tok, err := kc.AdminToken(context.Background()); err == nil {
			_ = kc.Admin(context.Background(), tok, http.MethodDelete, "/"+RealmName+"/users/"+id, nil, nil)
		}
	})
	return id
}

// userID looks a realm user up by exact username.
func userID(t *testing.T, username string) string {
	t.Helper()
	ctx := context.Background()
	tok, err := shared.kc.AdminToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var users []struct {
		ID string `json:"id"`
	}
	if err := shared.kc.Admin(ctx, tok, http.MethodGet, "/"+RealmName+"/users?exact=true&username="+url.QueryEscape(username), nil, &users); err != nil || len(users) != 1 {
		t.Fatalf("looking up %s: %v (%d users)", username, err, len(users))
	}
	return users[0].ID
}

// setUserEnabled switches a realm user on or off as the admin console's "Enabled" toggle does:
// the whole representation read, changed and written back (a partial one would clear the
// profile attributes it lacks).
func setUserEnabled(t *testing.T, id string, enabled bool) {
	t.Helper()
	ctx := context.Background()
	kc := shared.kc
	tok, err := kc.AdminToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := kc.Admin(ctx, tok, http.MethodGet, "/"+RealmName+"/users/"+id, nil, &rep); err != nil {
		t.Fatal(err)
	}
	rep["enabled"] = enabled
	if err := kc.Admin(ctx, tok, http.MethodPut, "/"+RealmName+"/users/"+id, rep, nil); err != nil {
		t.Fatal(err)
	}
}

// startIDPGateway creates the realm's client and olivia, and loads Caddy with mcp_idp (Keycloak
// its only sign-in; GitHub, at the shared fake, only to link an account) and mcp_auth in front of
// the demo backend, with mcp_auth's upstream token cache off so that every call asks mcp_idp's
// token exchange. The backend is wrapped to record the identity header reverse_proxy sets from
// mcp_auth's {http.auth.user.id}.
func startIDPGateway(t *testing.T) *idpSetup {
	t.Helper()
	idpPort, gwPort := freePort(t), freePort(t)
	s := &idpSetup{
		issuer:   fmt.Sprintf("http://127.0.0.1:%d", idpPort),
		kcClient: fmt.Sprintf("mcp-idp-%d", idpPort),
		kcSecret: randomSecret(t),
		gwSecret: randomSecret(t),
	}
	s.kc = shared.kc
	s.mcpURL = fmt.Sprintf("http://127.0.0.1:%d/mcp", gwPort)
	s.logFile = filepath.Join(t.TempDir(), "caddy.log")
	createIDPClient(t, s.kcClient, s.kcSecret, s.issuer+"/oidc/keycloak/callback")
	s.oliviaID = createUser(t, oliviaUser, oliviaEmail, DefaultUserPassword)

	backend, err := mcpbackend.NewHTTPHandler(mcpbackend.Options{GitHubAPIURL: shared.ghURL})
	if err != nil {
		t.Fatal(err)
	}
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.backendUsersMu.Lock()
		s.backendUsers = append(s.backendUsers, r.Header.Get("X-Mcpgate-User"))
		s.backendUsersMu.Unlock()
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(be.Close)

	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	cf := fmt.Sprintf(`{
	log {
		output file %[1]s
		level DEBUG
	}
	admin off
	persist_config off
	auto_https off
	grace_period 1s
}
%[2]s {
	mcp_idp {
		issuer %[2]s
		data_dir %[3]s
		encryption_key %[4]s
		github {
			client_id %[5]s
			client_secret %[6]s
			base_url %[7]s
			api_url %[7]s
			link_only
		}
		oidc keycloak {
			display_name "Company Keycloak"
			issuer %[8]s
			client_id %[9]s
			client_secret %[10]s
			allowed_email_domains %[11]s
			token_claims email
		}
		exchange_client gateway %[12]s %[13]s
		default_resource %[13]s
	}
}
http://127.0.0.1:%[14]d {
	mcp_auth {
		resource %[13]s
		issuer %[2]s
		upstream_cache_size -1
		upstream_token token_exchange {
			token_endpoint %[2]s/token
			client_id gateway
			client_secret %[12]s
			audience %[7]s
		}
	}
	reverse_proxy %[15]s {
		header_up X-Mcpgate-User {http.auth.user.id}
	}
}
`, s.logFile, s.issuer, t.TempDir(), base64.StdEncoding.EncodeToString(key),
		DefaultGitHubClientID, DefaultGitHubClientSecret, shared.ghURL,
		shared.kc.Issuer(), s.kcClient, s.kcSecret, idpUpstreamDomain,
		s.gwSecret, s.mcpURL, gwPort, strings.TrimPrefix(be.URL, "http://"))
	caddyrun.Load(t, cf)
	waitListening(t, idpPort)
	waitListening(t, gwPort)
	return s
}

// idpSignIn drives one user's browser from mcp_idp's authorization URL to the MCP client's
// redirect: mcp_idp's login (straight on to Keycloak, its only way in) → Keycloak's password
// form → mcp_idp's callback → mcp_idp's consent page, where, if githubLogin is set, the user
// first follows "Link GitHub account" (the GitHub fake's chooser, githubLogin picked, back to
// the consent page) → Approve → the client's redirect URI, returned unfollowed.
func idpSignIn(ctx context.Context, b *Browser, authURL, redirectURI, username, password, githubLogin string) (*url.URL, error) {
	linked := false
	return b.run(ctx, authURL, redirectURI, func(page *url.URL, doc *html.Node) (*http.Request, error) {
		if form := findElement(doc, func(n *html.Node) bool { return n.Data == "form" && attr(n, "id") == "kc-form-login" }); form != nil {
			return postForm(ctx, page, form, url.Values{"username": {username}, "password": {password}, "credentialId": {""}})
		}
		if githubLogin != "" && !linked {
			if a := findElement(doc, func(n *html.Node) bool {
				return n.Data == "a" && strings.Contains(attr(n, "href"), "/login/github?link=1")
			}); a != nil {
				linked = true
				return get(ctx, page, attr(a, "href"))
			}
		}
		if a := findElement(doc, func(n *html.Node) bool {
			return githubLogin != "" && n.Data == "a" && attr(n, "class") == "user" && text(n) == githubLogin
		}); a != nil {
			return get(ctx, page, attr(a, "href"))
		}
		if form := findElement(doc, func(n *html.Node) bool {
			return n.Data == "form" && strings.HasSuffix(attr(n, "action"), "/consent")
		}); form != nil {
			if githubLogin != "" && !linked {
				return nil, errors.New("the consent page offers no GitHub link to a user without one")
			}
			return postForm(ctx, page, form, url.Values{"action": {"approve"}})
		}
		return nil, nil
	})
}

// postForm submits form (its action, resolved against page) with its hidden inputs and values.
func postForm(ctx context.Context, page *url.URL, form *html.Node, values url.Values) (*http.Request, error) {
	action, err := page.Parse(attr(form, "action"))
	if err != nil {
		return nil, err
	}
	v := url.Values{}
	walk(form, func(n *html.Node) {
		if n.Data == "input" && attr(n, "type") == "hidden" && attr(n, "name") != "" {
			v.Set(attr(n, "name"), attr(n, "value"))
		}
	})
	for k, vs := range values {
		v[k] = vs
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(v.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req, nil
}

// tokenRecorder is the MCP client's transport: it keeps the last token response of the
// authorization server's token endpoint, as the client received it.
type tokenRecorder struct {
	tokenURL string
	mu       sync.Mutex
	access   string
	refresh  string
}

func (tr *tokenRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || r.Method != http.MethodPost || r.URL.String() != tr.tokenURL {
		return resp, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if resp.StatusCode == http.StatusOK && json.Unmarshal(b, &tok) == nil && tok.AccessToken != "" {
		tr.mu.Lock()
		tr.access, tr.refresh = tok.AccessToken, tok.RefreshToken
		tr.mu.Unlock()
	}
	return resp, nil
}

func (tr *tokenRecorder) tokens() (access, refresh string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.access, tr.refresh
}

// wantOIDCSubject is the subject mcp_idp gives a user of upstream iss with subject sub, as
// docs/idp.md ("Federation") states it: "oidc:" + base64url(SHA-256 of a versioned label, iss and
// sub) cut to 160 bits. Computed here independently of the idp package.
func wantOIDCSubject(iss, sub string) string {
	h := sha256.Sum256([]byte("mcpgate oidc subject v1\x00" + iss + "\x00" + sub))
	return "oidc:" + base64.RawURLEncoding.EncodeToString(h[:20])
}

// refreshAt redeems refresh at the IdP's token endpoint for the public client clientID and
// returns the status and the decoded answer.
func refreshAt(t *testing.T, issuer, clientID, refresh string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {clientID}}
	req, _ := http.NewRequest(http.MethodPost, issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	st, _, body := do(t, req)
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("token endpoint answered %d with no JSON: %.200q", st, body)
	}
	return st, m
}

// TestIDPUpstreamKeycloak: Keycloak as the upstream OpenID provider of mcp_idp.
//
//  1. The project's MCP client, given only the gateway's URL, finds mcp_idp from the 401,
//     registers there (RFC 7591) and logs olivia in: mcp_idp → Keycloak's password form →
//     mcp_idp's consent page, where she links GitHub (alice at the fake) at first use →
//     Approve. Our access token's sub is mcp_idp's "oidc:" subject of Keycloak's iss and her
//     Keycloak id (not her email; the email rides along as token_claims asks), and
//     list_repositories through mcp_auth returns alice's repositories: mcp_auth passed the
//     token, the backend saw that subject, and every GitHub call carried alice's token.
//  2. carol, whose verified email (example.com) is outside allowed_email_domains, signs in at
//     Keycloak and gets mcp_idp's 403 "Not allowed" page from its callback: no redirect to the
//     client, no code, and the client's login ends without a token.
//  3. While olivia is enabled, the client's refresh succeeds (mcp_idp refreshed her Keycloak
//     token) and its next call passes.
//     With olivia disabled in Keycloak (admin API, enabled=false), Keycloak refuses that refresh
//     with invalid_grant and mcp_idp answers our refresh with invalid_grant; the grant is gone:
//     after she is enabled again the same refresh token still gets invalid_grant, and her
//     earlier access token no longer passes the gateway (401 invalid_token).
func TestIDPUpstreamKeycloak(t *testing.T) {
	s := startIDPGateway(t)
	ctx := withTimeout(t, 4*time.Minute)

	// (1) olivia, through the project's client.
	rec := &tokenRecorder{tokenURL: s.issuer + "/token"}
	var authURL string
	var clockAhead atomic.Int64 // how far the client's clock runs ahead, in nanoseconds
	c, err := client.New(client.Config{
		MCPURL: s.mcpURL, CacheDir: t.TempDir(), HTTPClient: &http.Client{Transport: rec},
		Now: func() time.Time { return time.Now().Add(time.Duration(clockAhead.Load())) },
		OpenURL: func(u string) error {
			authURL = u
			redirect := mustURL(t, u).Query().Get("redirect_uri")
			b := NewBrowser()
			b.MaxSteps = 40
			cb, err := idpSignIn(ctx, b, u, redirect, oliviaUser, DefaultUserPassword, githubfake.AliceLogin)
			if err != nil {
				return err
			}
			resp, err := http.Get(cb.String())
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("the client's callback answered %s", resp.Status)
			}
			return nil
		},
		LoginTimeout: 2 * time.Minute, Stdout: io.Discard, Stderr: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Login(ctx); err != nil {
		t.Fatalf("olivia's login: %v", err)
	}
	if q := mustURL(t, authURL); !strings.HasPrefix(authURL, s.issuer+"/authorize?") || q.Query().Get("resource") != s.mcpURL {
		t.Errorf("the client was sent to %s, want %s/authorize with resource=%s", redactURL(q), s.issuer, s.mcpURL)
	}
	clientID := mustURL(t, authURL).Query().Get("client_id")
	access, refresh := rec.tokens()
	if access == "" || refresh == "" {
		t.Fatalf("the client got no access or no refresh token from %s/token", s.issuer)
	}
	wantSub := wantOIDCSubject(shared.kc.Issuer(), s.oliviaID)
	cl := claims(t, access)
	if cl["sub"] != wantSub || cl["iss"] != s.issuer || cl["email"] != oliviaEmail {
		t.Errorf("access token sub=%v iss=%v email=%v, want sub %s (oidc: of Keycloak's iss and her id), iss %s, email %s",
			cl["sub"], cl["iss"], cl["email"], wantSub, s.issuer, oliviaEmail)
	}
	if sub, _ := cl["sub"].(string); strings.Contains(sub, "@") || strings.Contains(sub, s.oliviaID) {
		t.Errorf("the subject %q shows the email or the upstream id", sub)
	}

	shared.gh.Reset()
	res, err := c.Call(ctx, "list_repositories", map[string]any{"per_page": 100})
	if err != nil || res.IsError {
		if res != nil {
			err = fmt.Errorf("%v %s", err, client.ResultText(res))
		}
		t.Fatalf("olivia's list_repositories: %v", err)
	}
	if names := strings.Join(repoNames(t, res.StructuredContent), ","); !strings.Contains(names, "alice/secret-plans") || strings.Contains(names, "bob/tools") {
		t.Errorf("repositories %s, want alice's (the GitHub account olivia linked)", names)
	}
	ghTokens := shared.gh.Tokens()
	if len(ghTokens) == 0 {
		t.Error("the GitHub fake received no call")
	}
	for _, tok := range ghTokens {
		if tok != githubfake.AliceToken {
			t.Errorf("a GitHub call carried a token that is not alice's")
		}
	}
	s.backendUsersMu.Lock()
	seen := append([]string(nil), s.backendUsers...)
	s.backendUsersMu.Unlock()
	if len(seen) == 0 {
		t.Error("no request reached the backend")
	}
	for _, u := range seen {
		if u != wantSub {
			t.Errorf("the backend saw user %q, want %s", u, wantSub)
		}
	}

	// (2) carol: outside the allowed domain.
	carolCtx, stop := context.WithCancel(ctx)
	defer stop()
	var refusal error
	var carolCallback *url.URL
	carolClient, err := client.New(client.Config{
		MCPURL: s.mcpURL, CacheDir: t.TempDir(),
		OpenURL: func(u string) error {
			defer stop() // the client waits for its callback until this is cancelled
			carolCallback, refusal = idpSignIn(carolCtx, NewBrowser(), u, mustURL(t, u).Query().Get("redirect_uri"), Carol, DefaultUserPassword, "")
			return refusal
		},
		LoginTimeout: 2 * time.Minute, Stdout: io.Discard, Stderr: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = carolClient.Close() })
	if err := carolClient.Login(carolCtx); err == nil {
		t.Error("carol's login succeeded")
	}
	if carolCallback != nil {
		t.Errorf("carol's browser was sent to the client: %s (code present: %v)", redactURL(carolCallback), carolCallback.Query().Has("code"))
	}
	if refusal == nil || !errors.Is(refusal, ErrStuck) || !strings.Contains(refusal.Error(), s.issuer+"/oidc/keycloak/callback answered 403") ||
		!strings.Contains(refusal.Error(), `title "Not allowed"`) {
		t.Errorf("carol's browser: %v; want mcp_idp's 403 \"Not allowed\" page at its callback", refusal)
	}
	if st, err := carolClient.Status(); err != nil || st.LoggedIn {
		t.Errorf("carol's client status: %+v %v, want not logged in", st, err)
	}

	// (3) Refresh while olivia is enabled: the client, its clock moved past the access token's
	// expiry, refreshes by itself before the next call.
	clockAhead.Store(int64(2 * time.Hour))
	res, err = c.Call(ctx, "list_repositories", map[string]any{"per_page": 100})
	if err != nil || res.IsError {
		t.Fatalf("olivia's list_repositories after the client's refresh: %v", err)
	}
	newAccess, newRefresh := rec.tokens()
	if newAccess == access || newRefresh == refresh {
		t.Fatalf("the client did not refresh (access or refresh token unchanged)")
	}
	if sub := claims(t, newAccess)["sub"]; sub != wantSub {
		t.Errorf("refreshed access token sub %v, want %s", sub, wantSub)
	}
	refresh = newRefresh
	// Then disabled in Keycloak: our refresh, sent here by hand to read the answer.
	setUserEnabled(t, s.oliviaID, false)
	st, tok := refreshAt(t, s.issuer, clientID, refresh)
	// The description tells this refusal (Keycloak's invalid_grant on mcp_idp's refresh of her
	// Keycloak token) from mcp_idp's own reasons for invalid_grant.
	if desc, _ := tok["error_description"].(string); st != http.StatusBadRequest || tok["error"] != "invalid_grant" || !strings.Contains(desc, "sign-in provider") {
		t.Errorf("refresh with olivia disabled in Keycloak: %d error=%v (%v), want 400 invalid_grant from the sign-in provider", st, tok["error"], tok["error_description"])
	}
	setUserEnabled(t, s.oliviaID, true)
	st, tok = refreshAt(t, s.issuer, clientID, refresh)
	if st != http.StatusBadRequest || tok["error"] != "invalid_grant" {
		t.Errorf("refresh after olivia is enabled again: %d error=%v (%v), want 400 invalid_grant (the grant ended)", st, tok["error"], tok["error_description"])
	}
	// Her access token from before is still a valid JWT for mcp_auth, but the grant it belongs
	// to is revoked, so mcp_idp's token exchange refuses it and mcp_auth answers 401 (the
	// gateway's upstream token cache is off; with it on, a cached GitHub token serves the token
	// until upstream_cache_ttl).
	st, hdr, body := s.call(t, access)
	wantRejection(t, "olivia's access token after the grant ended", st, hdr, body, http.StatusUnauthorized, "invalid_token")

	s.assertNoTokens(t, map[string]string{
		"mcp_idp's client secret at Keycloak": s.kcSecret, "the gateway's exchange secret": s.gwSecret,
		"alice's GitHub token": githubfake.AliceToken, "our refresh token": refresh,
	})
}
