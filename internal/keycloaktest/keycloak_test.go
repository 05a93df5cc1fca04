package keycloaktest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcpgate/mcpgate/mcpbackend/githubfake"
)

// testAudience is the MCP resource URL the realm's audience mapper puts into access tokens.
const testAudience = "https://127.0.0.1:8443/mcp"

// A third GitHub user, who signs in through the "github-json" provider.
const (
	erinLogin = "erin"
	erinID    = 1003
	erinToken = "ghu_fakeErinToken0000000000000000000003"
)

// sharedFeatures are enabled on the shared server so that the legacy token exchange (v1) can be
// tested without a second start: the GET form's code path does not look at either feature.
var sharedFeatures = []string{"token-exchange", "admin-fine-grained-authz:v1"}

// shared is the package's Keycloak (default features) and its GitHub fake, started once by TestMain.
var shared struct {
	kc    *Server
	gh    *githubfake.Fake
	oauth *githubfake.OAuth
	ghURL string
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	gh := githubfake.NewDemo()
	gh.AddUser(githubfake.User{ID: erinID, Login: erinLogin, Name: "Erin Example", Email: "erin@example.com", Token: erinToken})
	oauth := githubfake.NewOAuth(gh, DefaultGitHubClientID, DefaultGitHubClientSecret)
	ghSrv := httptest.NewServer(oauth)
	defer ghSrv.Close()
	params := RealmParams{GitHubURL: ghSrv.URL, Audience: testAudience}
	realm, err := params.Realm()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var log io.Writer
	if os.Getenv("MCPGATE_KEYCLOAK_LOG") != "" {
		log = os.Stderr
	}
	kc, err := Start(context.Background(), Options{Realms: [][]byte{realm}, Log: log, Features: sharedFeatures})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("keycloaktest: Keycloak ready at %s in %s (cached build reused: %v)\n", kc.URL, kc.StartDuration.Round(100*time.Millisecond), kc.BuildReused)
	shared.kc, shared.gh, shared.oauth, shared.ghURL = kc, gh, oauth, ghSrv.URL
	code := m.Run()
	if err := stoppedCleanly(kc); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return code
}

// stoppedCleanly closes kc and checks (5): its port refuses connections and no process of its
// group (JVM, shells) is left.
func stoppedCleanly(kc *Server) error {
	pgid := kc.cmd.Process.Pid
	if err := kc.Close(); err != nil {
		return err
	}
	_, err := http.Get(kc.Issuer() + "/.well-known/openid-configuration")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("after Close, a request to Keycloak gave %v, want connection refused", err)
	}
	if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("after Close, Keycloak's process group %d still exists (kill 0: %v)", pgid, err)
	}
	if _, err := os.Stat(kc.Home); !os.IsNotExist(err) {
		return fmt.Errorf("after Close, %s is still there", kc.Home)
	}
	return nil
}

// signIn runs the code flow with PKCE at mcp-client for one user, through GitHub (alias) when
// password is "", else through Keycloak's password form, and returns the token response.
func signIn(t *testing.T, kc *Server, alias, user, password string, hint bool) *oauth2.Token {
	t.Helper()
	tok, err := kc.SignIn(context.Background(), CodeFlow{Provider: alias, Login: user, Password: password, LoginHint: hint})
	if err != nil {
		t.Fatalf("sign-in of %s: %v", user, err)
	}
	return tok
}

// publicClient is mcp-client's OAuth configuration at kc.
func publicClient(kc *Server) *oauth2.Config {
	return &oauth2.Config{
		ClientID: PublicClient,
		Endpoint: oauth2.Endpoint{
			AuthURL:   kc.Issuer() + "/protocol/openid-connect/auth",
			TokenURL:  kc.Issuer() + "/protocol/openid-connect/token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
		RedirectURL: DefaultRedirectURI,
		Scopes:      []string{"openid"},
	}
}

// claims decodes a JWT's payload without verifying it (the tests only read what Keycloak put in).
func claims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("access token is not a JWS compact serialization (%d parts)", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// brokerGET is variant (a): GET /realms/mcp/broker/{alias}/token with the user's access token.
func brokerGET(t *testing.T, kc *Server, alias, accessToken string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, kc.Issuer()+"/broker/"+alias+"/token", nil)
	if accessToken != "" {
		req.Header.Set("Authorization", "Bearer "+accessToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

// do sends req and returns the status, Content-Type and body.
func do(t *testing.T, req *http.Request) (int, string, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

// githubUser asks the GitHub fake who token belongs to, as the MCP backend would.
func githubUser(t *testing.T, token string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, shared.ghURL+"/user", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	st, _, body := do(t, req)
	var u struct {
		Login string `json:"login"`
	}
	if st != http.StatusOK || json.Unmarshal([]byte(body), &u) != nil {
		t.Fatalf("GitHub fake /user with the retrieved token: %d", st)
	}
	return u.Login
}

func contains(list any, want string) bool {
	l, _ := list.([]any)
	for _, v := range l {
		if v == want {
			return true
		}
	}
	return false
}

// (1) A user signs in through Keycloak's login page, the GitHub button, the GitHub fake and back,
// and mcp-client redeems the code with PKCE.
func TestGitHubSignInThroughKeycloak(t *testing.T) {
	kc := shared.kc
	before := len(shared.oauth.Exchanges())
	tok := signIn(t, kc, GitHubAlias, githubfake.AliceLogin, "", true)
	c := claims(t, tok.AccessToken)
	if c["iss"] != kc.Issuer() || c["azp"] != PublicClient || c["typ"] != "Bearer" ||
		c["preferred_username"] != githubfake.AliceLogin || c["email"] != "alice@example.com" {
		t.Errorf("claims iss=%v azp=%v typ=%v preferred_username=%v email=%v", c["iss"], c["azp"], c["typ"], c["preferred_username"], c["email"])
	}
	// aud is an array: the mapped resource and gateway plus Keycloak's own "broker" and "account".
	for _, want := range []string{testAudience, GatewayClient, "broker", "account"} {
		if !contains(c["aud"], want) {
			t.Errorf("aud %v lacks %q", c["aud"], want)
		}
	}
	ra, _ := c["resource_access"].(map[string]any)
	broker, _ := ra["broker"].(map[string]any)
	if !contains(broker["roles"], "read-token") {
		t.Errorf("resource_access.broker.roles = %v, want read-token (addReadTokenRoleOnCreate)", broker["roles"])
	}
	ex := shared.oauth.Exchanges()
	if len(ex) != before+1 {
		t.Fatalf("Keycloak redeemed %d GitHub codes, want 1", len(ex)-before)
	}
	// Keycloak's GitHub provider posts its client secret in the form, without PKCE, and, unless
	// githubJsonFormat is set, without Accept: application/json.
	if got, want := ex[before], (githubfake.Exchange{ClientAuth: "client_secret_post", Login: githubfake.AliceLogin}); got != want {
		t.Errorf("GitHub token request %+v, want %+v", got, want)
	}
}

// (2a, 3) GET /realms/mcp/broker/{alias}/token with the user's own access token returns the body
// GitHub's token endpoint sent when the user signed in, verbatim, always labelled
// application/json: form-encoded with the default provider, JSON with githubJsonFormat. Each user
// gets their own token, which works against the GitHub API as that user.
func TestBrokerTokenGET(t *testing.T) {
	kc := shared.kc
	for _, tc := range []struct {
		alias, login, token string
		hint                bool // login_hint passed through (else the fake's chooser page is used)
	}{
		{GitHubAlias, githubfake.AliceLogin, githubfake.AliceToken, true},
		{GitHubAlias, githubfake.BobLogin, githubfake.BobToken, false},
		{GitHubJSONAlias, erinLogin, erinToken, true},
	} {
		t.Run(tc.alias+"/"+tc.login, func(t *testing.T) {
			at := signIn(t, kc, tc.alias, tc.login, "", tc.hint)
			st, ct, body := brokerGET(t, kc, tc.alias, at.AccessToken)
			if st != http.StatusOK || ct != "application/json" {
				t.Fatalf("GET broker token: %d %q", st, ct)
			}
			got := map[string]string{}
			if tc.alias == GitHubJSONAlias {
				if err := json.Unmarshal([]byte(body), &got); err != nil {
					t.Fatalf("body is not the JSON token response: %v", err)
				}
			} else {
				if strings.HasPrefix(body, "{") {
					t.Fatal("body is JSON, want GitHub's form-encoded response")
				}
				q, err := url.ParseQuery(body)
				if err != nil {
					t.Fatal(err)
				}
				for k := range q {
					got[k] = q.Get(k)
				}
			}
			if len(got) != 3 || got["access_token"] != tc.token || got["token_type"] != "bearer" ||
				got["scope"] != "read:user,user:email,repo" {
				t.Errorf("token response: keys %d, access_token is %s's: %v, token_type %q, scope %q",
					len(got), tc.login, got["access_token"] == tc.token, got["token_type"], got["scope"])
			}
			if who := githubUser(t, got["access_token"]); who != tc.login {
				t.Errorf("the retrieved token is %s's at GitHub, want %s's", who, tc.login)
			}
		})
	}
}

// (4) What the GET form answers when it cannot give a token. A user without a GitHub link gets
// 400 "not associated" (the token source's "not linked" signal, to map to 403 with a link hint);
// a user without broker read-token gets 403; a missing or bad bearer token 400 (not 401).
func TestBrokerTokenGETRejections(t *testing.T) {
	kc := shared.kc
	carol := signIn(t, kc, "", Carol, DefaultUserPassword, false)
	dave := signIn(t, kc, "", Dave, DefaultUserPassword, false)
	alice := signIn(t, kc, GitHubAlias, githubfake.AliceLogin, "", true)
	notLinked := func(alias string) string {
		return `^\{"errorMessage":"User \[[0-9a-f-]{36}\] is not associated with identity provider \[` + alias + `\]\."\}$`
	}
	for _, tc := range []struct {
		name, alias, bearer string
		status              int
		ct, body            string // body: a regular expression
	}{
		{"password user, not linked", GitHubAlias, carol.AccessToken, 400, "application/json", notLinked(GitHubAlias)},
		{"linked to another provider only", GitHubJSONAlias, alice.AccessToken, 400, "application/json", notLinked(GitHubJSONAlias)},
		{"no read-token role", GitHubAlias, dave.AccessToken, 403, "application/json",
			`^\{"errorMessage":"Client \[mcp-client\] not authorized to retrieve tokens from identity provider \[github\]\."\}$`},
		{"no bearer token", GitHubAlias, "", 400, "application/json", `^\{"errorMessage":"Invalid token\."\}$`},
		{"malformed bearer token", GitHubAlias, "not-a-jwt", 400, "application/json", `^\{"errorMessage":"Invalid token\."\}$`},
		{"unknown provider alias", "no-such-idp", alice.AccessToken, 502, "text/html;charset=utf-8", `(?s)^<!DOCTYPE html>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, ct, body := brokerGET(t, kc, tc.alias, tc.bearer)
			if st != tc.status || ct != tc.ct || !regexp.MustCompile(tc.body).MatchString(body) {
				t.Errorf("got %d %q %.200q, want %d %q matching %s", st, ct, body, tc.status, tc.ct, tc.body)
			}
		})
	}
}

// (2b) Keycloak 26.5 has no POST form of the endpoint (the identity brokering API v2 arrives as a
// preview feature in a later release): a POST with the gateway's credentials and token= is 404.
func TestBrokerTokenPOSTAbsentIn265(t *testing.T) {
	kc := shared.kc
	alice := signIn(t, kc, GitHubAlias, githubfake.AliceLogin, "", true)
	req, _ := http.NewRequest(http.MethodPost, kc.Issuer()+"/broker/github/token",
		strings.NewReader(url.Values{"token": {alice.AccessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(GatewayClient, DefaultGatewaySecret)
	st, ct, body := do(t, req)
	if st != http.StatusNotFound || ct != "application/json" || body != `{"error":"HTTP 404 Not Found"}` {
		t.Errorf("POST: %d %q %.200q", st, ct, body)
	}
}

// exchangeV1 is the legacy token exchange (2c): the gateway's credentials, the user's access
// token as subject, requested_issuer = the provider alias.
func exchangeV1(t *testing.T, kc *Server, subject, alias string) (int, map[string]any) {
	t.Helper()
	form := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {subject},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"requested_issuer":   {alias},
	}
	req, _ := http.NewRequest(http.MethodPost, kc.Issuer()+"/protocol/openid-connect/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(GatewayClient, DefaultGatewaySecret)
	st, ct, body := do(t, req)
	var m map[string]any
	if ct != "application/json" || json.Unmarshal([]byte(body), &m) != nil {
		t.Fatalf("exchange answered %d %q, not JSON", st, ct)
	}
	return st, m
}

// (2c) The legacy token exchange v1 (features token-exchange and admin-fine-grained-authz:v1)
// returns the stored GitHub token once the provider's token-exchange permission names the
// gateway client.
func TestTokenExchangeV1(t *testing.T) {
	kc := shared.kc
	alice := signIn(t, kc, GitHubAlias, githubfake.AliceLogin, "", true)
	erin := signIn(t, kc, GitHubJSONAlias, erinLogin, "", true)
	carol := signIn(t, kc, "", Carol, DefaultUserPassword, false)
	// github-json's permission is never granted: this is the answer without permission.
	st, m := exchangeV1(t, kc, erin.AccessToken, GitHubJSONAlias)
	if st != http.StatusForbidden || m["error"] != "access_denied" || m["error_description"] != "Client not allowed to exchange" || len(m) != 2 {
		t.Errorf("without permission: %d %v", st, m)
	}
	exchangeV1Once.Do(func() {
		exchangeV1Err = kc.AllowTokenExchangeV1(context.Background(), RealmName, GitHubAlias, GatewayClient)
	})
	if exchangeV1Err != nil {
		t.Fatal(exchangeV1Err)
	}
	st, m = exchangeV1(t, kc, alice.AccessToken, GitHubAlias)
	linkPrefix := kc.Issuer() + "/broker/github/link?"
	link, _ := m["account-link-url"].(string)
	if st != http.StatusOK || m["access_token"] != githubfake.AliceToken ||
		m["issued_token_type"] != "urn:ietf:params:oauth:token-type:access_token" || m["expires_in"] != 0.0 ||
		!strings.HasPrefix(link, linkPrefix) || !strings.Contains(link, "client_id=mcp-gateway") {
		t.Errorf("exchange: %d, access_token is alice's: %v, issued_token_type %v, expires_in %v, account-link-url %q",
			st, m["access_token"] == githubfake.AliceToken, m["issued_token_type"], m["expires_in"], link)
	}
	for _, k := range []string{"token_type", "refresh_token", "scope"} {
		if _, ok := m[k]; ok {
			t.Errorf("exchange response has %q; Keycloak 26.5 sent none", k)
		}
	}
	// Not linked: 400 not_linked with a link URL the user could follow to link GitHub.
	st, m = exchangeV1(t, kc, carol.AccessToken, GitHubAlias)
	link, _ = m["account-link-url"].(string)
	if st != http.StatusBadRequest || m["error"] != "not_linked" || m["error_description"] != "identity provider is not linked" ||
		!strings.HasPrefix(link, linkPrefix) {
		t.Errorf("not linked: %d %v", st, m)
	}
}

var (
	exchangeV1Once sync.Once
	exchangeV1Err  error
)

// mcp-client's redirect URI http://127.0.0.1/* also admits a port (a native client's loopback
// listener), and PKCE is required.
func TestPublicClientRedirectAndPKCE(t *testing.T) {
	kc := shared.kc
	ctx := context.Background()
	conf := publicClient(kc)
	conf.RedirectURL = "http://127.0.0.1:54321/callback"
	cb, err := NewBrowser().SignInWithPassword(ctx, conf.AuthCodeURL("s1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())),
		conf.RedirectURL, Carol, DefaultUserPassword)
	if err != nil || cb.Query().Get("code") == "" {
		t.Errorf("loopback redirect with a port: err %v", err)
	}
	conf.RedirectURL = DefaultRedirectURI
	cb, err = NewBrowser().SignInWithPassword(ctx, conf.AuthCodeURL("s2"), DefaultRedirectURI, Carol, DefaultUserPassword)
	if err != nil {
		t.Fatal(err)
	}
	if q := cb.Query(); q.Get("error") != "invalid_request" || q.Get("error_description") != "Missing parameter: code_challenge_method" || q.Get("state") != "s2" {
		t.Errorf("without PKCE: error %q %q", q.Get("error"), q.Get("error_description"))
	}
	// A redirect URI the client does not have: Keycloak shows an error page instead of redirecting.
	_, err = kc.SignIn(ctx, CodeFlow{RedirectURI: "http://example.com/cb", Login: Carol, Password: DefaultUserPassword})
	if !errors.Is(err, ErrStuck) || !strings.Contains(err.Error(), "Invalid parameter: redirect_uri") {
		t.Errorf("unknown redirect URI: err = %v, want ErrStuck naming the parameter", err)
	}
}
