package keycloaktest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/mcpbackend/githubfake"
)

// V2Version is the release the identity brokering API v2 is tested on: 26.5 does not have it.
const V2Version = "26.7.3"

// postV2 is the identity brokering API v2 request: POST /realms/mcp/broker/{alias}/token with the
// client's credentials (HTTP Basic, or only client_id in the form for a public client) and the
// user's access token as token=.
func postV2(t *testing.T, kc *Server, alias, subject, clientID, secret string) (int, string, map[string]any) {
	t.Helper()
	form := url.Values{"token": {subject}}
	if secret == "" {
		form.Set("client_id", clientID)
	}
	req, _ := http.NewRequest(http.MethodPost, kc.Issuer()+"/broker/"+alias+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(clientID, secret)
	}
	st, ct, body := do(t, req)
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("POST broker token answered %d %q, not a JSON object", st, ct)
	}
	return st, ct, m
}

// (2b) Keycloak 26.7 with the preview feature identity-brokering-api:v2: the gateway's
// confidential client POSTs the user's access token and gets a JSON token response built from the
// stored token (whatever format GitHub answered in). The client needs the attributes
// external.token.enabled and external.token.idp, and must be in the token's aud (or be its azp).
// With v2 on, the GET form (v1) is off, and 26.7 has no legacy token exchange.
func TestBrokeringAPIV2(t *testing.T) {
	realm, err := RealmParams{GitHubURL: shared.ghURL, Audience: testAudience, BrokeringV2: true}.Realm()
	if err != nil {
		t.Fatal(err)
	}
	kc := StartT(t, Options{Version: V2Version, Realms: [][]byte{realm}, Features: []string{"identity-brokering-api:v2"}})
	t.Logf("Keycloak %s ready in %s (cached build reused: %v)", V2Version, kc.StartDuration.Round(100*time.Millisecond), kc.BuildReused)
	alice := signIn(t, kc, GitHubAlias, githubfake.AliceLogin, "", true)
	erin := signIn(t, kc, GitHubJSONAlias, erinLogin, "", true)
	carol := signIn(t, kc, "", Carol, DefaultUserPassword, false)
	if aud := claims(t, alice.AccessToken)["aud"]; !contains(aud, GatewayClient) || contains(aud, "broker") {
		t.Errorf("aud = %v: want mcp-gateway, and no broker client on a v2 server", aud)
	}

	for _, tc := range []struct {
		name, alias, login, token string
		subject                   string
	}{
		{"form-encoded at GitHub", GitHubAlias, githubfake.AliceLogin, githubfake.AliceToken, alice.AccessToken},
		{"JSON at GitHub", GitHubJSONAlias, erinLogin, erinToken, erin.AccessToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, ct, m := postV2(t, kc, tc.alias, tc.subject, GatewayClient, DefaultGatewaySecret)
			if st != http.StatusOK || ct != "application/json" || m["access_token"] != tc.token ||
				m["issued_token_type"] != "urn:ietf:params:oauth:token-type:access_token" || m["expires_in"] != 0.0 {
				t.Errorf("v2: %d %q, access_token is %s's: %v, issued_token_type %v, expires_in %v",
					st, ct, tc.login, m["access_token"] == tc.token, m["issued_token_type"], m["expires_in"])
			}
			for _, k := range []string{"token_type", "scope", "refresh_token"} {
				if _, ok := m[k]; ok {
					t.Errorf("v2 response has %q; Keycloak %s sent none", k, V2Version)
				}
			}
			if who := githubUser(t, m["access_token"].(string)); who != tc.login {
				t.Errorf("token is %s's at GitHub, want %s's", who, tc.login)
			}
		})
	}

	for _, tc := range []struct {
		name, alias, subject, client, secret string
		status                               int
		err, desc                            string
	}{
		{"not linked", GitHubAlias, carol.AccessToken, GatewayClient, DefaultGatewaySecret, 400, "invalid_request", "User not associated to identity provider"},
		{"wrong client secret", GitHubAlias, alice.AccessToken, GatewayClient, "wrong", 401, "unauthorized_client", "Invalid client or Invalid client credentials"},
		{"public client", GitHubAlias, alice.AccessToken, PublicClient, "", 403, "invalid_client", "public clients not allowed"},
		{"malformed user token", GitHubAlias, "not-a-jwt", GatewayClient, DefaultGatewaySecret, 400, "invalid_token", "Invalid token"},
		{"provider not in external.token.idp", "no-such-idp", alice.AccessToken, GatewayClient, DefaultGatewaySecret, 403, "invalid_client", "Client not allowed to retrieve token for the provider"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, ct, m := postV2(t, kc, tc.alias, tc.subject, tc.client, tc.secret)
			if st != tc.status || ct != "application/json" || m["error"] != tc.err || m["error_description"] != tc.desc || len(m) != 2 {
				t.Errorf("got %d %q %v, want %d %s %q", st, ct, m, tc.status, tc.err, tc.desc)
			}
		})
	}

	st, ct, body := brokerGET(t, kc, GitHubAlias, alice.AccessToken)
	if st != http.StatusBadRequest || ct != "application/json" || body != `{"errorMessage":"Identity Brokering API feature not enabled"}` {
		t.Errorf("GET (v1) on a v2 server: %d %q %.200q", st, ct, body)
	}
	form := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {alice.AccessToken},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"requested_issuer":   {GitHubAlias},
	}
	req, _ := http.NewRequest(http.MethodPost, kc.Issuer()+"/protocol/openid-connect/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(GatewayClient, DefaultGatewaySecret)
	st, ct, body = do(t, req)
	if st != http.StatusBadRequest || ct != "application/json" ||
		body != `{"error":"invalid_request","error_description":"Parameter 'requested_issuer' is not supported for standard token exchange"}` {
		t.Errorf("legacy exchange on %s: %d %q %.200q", V2Version, st, ct, body)
	}
}
