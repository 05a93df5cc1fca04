package keycloaktest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcpgate/mcpgate/mcpbackend/githubfake"
)

// testAudience is the MCP resource URL the realm's audience mapper puts into access tokens.
const testAudience = "https://127.0.0.1:8443/mcp"

// redirectURI is mcp-client's redirect URI in these tests; nothing listens there: the Browser
// stops at the redirect.
const redirectURI = "http://127.0.0.1/callback"

// shared is the package's Keycloak (default features) and its GitHub fake, started once by TestMain.
var shared struct {
	kc     *Server
	gh     *githubfake.Fake
	oauth  *githubfake.OAuth
	ghURL  string
	realm  []byte
	params RealmParams
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	gh := githubfake.NewDemo()
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
	kc, err := Start(context.Background(), Options{Realms: [][]byte{realm}, Log: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer kc.Close()
	fmt.Printf("keycloaktest: Keycloak ready at %s in %s\n", kc.URL, kc.StartDuration.Round(100*time.Millisecond))
	shared.kc, shared.gh, shared.oauth, shared.ghURL, shared.realm, shared.params = kc, gh, oauth, ghSrv.URL, realm, params
	return m.Run()
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
		RedirectURL: redirectURI,
		Scopes:      []string{"openid"},
	}
}

// signIn runs the code flow with PKCE for one user, through GitHub (alias) when password is "",
// else through Keycloak's password form, and returns the token response.
func signIn(t *testing.T, kc *Server, alias, user, password string, hint bool) *oauth2.Token {
	t.Helper()
	ctx := context.Background()
	conf := publicClient(kc)
	verifier := oauth2.GenerateVerifier()
	state := oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if hint {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", user))
	}
	authURL := conf.AuthCodeURL(state, opts...)
	b := NewBrowser()
	var cb *url.URL
	var err error
	if password == "" {
		cb, err = b.SignInWithGitHub(ctx, authURL, redirectURI, alias, user)
	} else {
		cb, err = b.SignInWithPassword(ctx, authURL, redirectURI, user, password)
	}
	if err != nil {
		t.Fatalf("sign-in of %s: %v", user, err)
	}
	q := cb.Query()
	if q.Get("state") != state || q.Get("code") == "" {
		t.Fatalf("callback for %s: state ok %v, code present %v, error %q", user, q.Get("state") == state, q.Get("code") != "", q.Get("error"))
	}
	if q.Get("iss") != kc.Issuer() {
		t.Errorf("callback iss = %q, want %q (RFC 9207)", q.Get("iss"), kc.Issuer())
	}
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code redemption for %s: %v", user, err)
	}
	return tok
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

func TestExplore(t *testing.T) {
	kc := shared.kc
	tok := signIn(t, kc, GitHubAlias, githubfake.AliceLogin, "", true)
	c := claims(t, tok.AccessToken)
	t.Logf("claims aud=%v azp=%v scope=%v resource_access=%v typ=%v", c["aud"], c["azp"], c["scope"], c["resource_access"], c["typ"])
	st, ct, body := brokerGET(t, kc, GitHubAlias, tok.AccessToken)
	t.Logf("GET broker token: %d %q len=%d form=%v", st, ct, len(body), strings.HasPrefix(body, "access_token="))
	t.Logf("exchanges: %+v", shared.oauth.Exchanges())
}
