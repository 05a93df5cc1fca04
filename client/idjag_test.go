package client

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpgate/mcpgate/idp"
)

// fakeEnterpriseIdP is the company IdP of enterprise-managed authorization: it exchanges the ID
// token it issued ("id-token-of-alice") for an ID-JAG signed with the key its JWKS publishes.
func fakeEnterpriseIdP(t *testing.T, mcpClientID *string) *httptest.Server {
	t.Helper()
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	var ts *httptest.Server
	ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/jwks":
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]any{
				"kty": "RSA", "kid": "k", "alg": "RS256", "use": "sig",
				"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
				"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
			}}})
		case "/token":
			_ = r.ParseForm()
			id, secret, _ := r.BasicAuth()
			f := r.PostForm
			switch {
			case id != "ent-client" || secret != "ent-secret":
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
				return
			case f.Get("grant_type") != grantTypeExchange || f.Get("requested_token_type") != TokenTypeIDJAG ||
				f.Get("subject_token_type") != TokenTypeIDToken || f.Get("audience") == "" || f.Get("resource") == "":
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"invalid_request"}`))
				return
			case f.Get("subject_token") != "id-token-of-alice":
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"unknown subject token"}`))
				return
			}
			now := time.Now()
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
				"iss": ts.URL, "sub": "alice-0001", "aud": f.Get("audience"), "client_id": *mcpClientID,
				"resource": f.Get("resource"), "scope": "mcp", "jti": randomState(), "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
			})
			tok.Header["typ"] = "oauth-id-jag+jwt"
			tok.Header["kid"] = "k"
			s, _ := tok.SignedString(key)
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": s, "issued_token_type": TokenTypeIDJAG, "token_type": "N_A", "scope": "mcp", "expires_in": 300})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ts.Close)
	return ts
}

func randomState() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestIDJAGAgainstMcpgateIdP runs both steps against a fake enterprise IdP and mcpgate's real
// authorization server, which trusts that IdP for this client.
func TestIDJAGAgainstMcpgateIdP(t *testing.T) {
	ctx := context.Background()
	const mcpURL = "https://mcp.example.com/mcp"
	var handler atomic.Value
	asrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.Load().(http.Handler).ServeHTTP(w, r)
	}))
	issuer := "http://" + asrv.Listener.Addr().String()
	store := idp.NewMemoryStore()
	t.Cleanup(func() { store.Close() })
	encKey := make([]byte, 32)
	_, _ = rand.Read(encKey)

	// Register the client first: the trust names its client_id.
	reg, err := idp.New(idp.Options{Issuer: issuer, DevLogin: true, Store: store, EncryptionKey: encKey, DefaultResource: mcpURL})
	if err != nil {
		t.Fatal(err)
	}
	handler.Store(http.Handler(reg))
	asrv.Start()
	t.Cleanup(asrv.Close)
	resp, err := http.Post(issuer+"/register", "application/json", strings.NewReader(`{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"client_secret_basic","client_name":"e"}`))
	if err != nil {
		t.Fatal(err)
	}
	var regd struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&regd)
	resp.Body.Close()
	reg.Close()

	ent := fakeEnterpriseIdP(t, &regd.ClientID)
	srv, err := idp.New(idp.Options{
		Issuer: issuer, DevLogin: true, Store: store, EncryptionKey: encKey, DefaultResource: mcpURL,
		IDJAGTrusts: []idp.IDJAGTrust{{Issuer: ent.URL, JWKSURL: ent.URL + "/jwks", ClientIDs: []string{regd.ClientID}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	handler.Store(http.Handler(srv))

	tokenURL, err := IDJAGTokenEndpoint(ctx, nil, issuer)
	if err != nil || tokenURL != issuer+"/token" {
		t.Fatalf("token endpoint: %q %v", tokenURL, err)
	}
	jag, err := RequestIDJAG(ctx, IDJAGRequest{
		TokenURL: ent.URL + "/token", ClientID: "ent-client", ClientSecret: "ent-secret",
		IDToken: "id-token-of-alice", Audience: issuer, Resource: mcpURL, Scopes: []string{"mcp"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := RedeemIDJAG(ctx, IDJAGGrant{TokenURL: tokenURL, ClientID: regd.ClientID, ClientSecret: regd.ClientSecret, Assertion: jag.Assertion})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Scope != "mcp" || tok.ExpiresIn <= 0 {
		t.Fatalf("token: scope %q expires_in %d", tok.Scope, tok.ExpiresIn)
	}
	req, _ := http.NewRequest(http.MethodGet, issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	uresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ui map[string]any
	_ = json.NewDecoder(uresp.Body).Decode(&ui)
	uresp.Body.Close()
	if sub, _ := ui["sub"].(string); uresp.StatusCode != 200 || !strings.HasPrefix(sub, "oidc:") {
		t.Fatalf("userinfo: %d %v", uresp.StatusCode, ui)
	}

	// The same ID-JAG twice: the second is refused, and the error carries no assertion.
	_, err = RedeemIDJAG(ctx, IDJAGGrant{TokenURL: tokenURL, ClientID: regd.ClientID, ClientSecret: regd.ClientSecret, Assertion: jag.Assertion})
	var oe *OAuthError
	if !errors.As(err, &oe) || oe.Code != "invalid_grant" || strings.Contains(err.Error(), jag.Assertion) {
		t.Fatalf("replay: %v", err)
	}
	// The IdP refusing the exchange is an OAuthError naming the IdP.
	_, err = RequestIDJAG(ctx, IDJAGRequest{TokenURL: ent.URL + "/token", ClientID: "ent-client", ClientSecret: "ent-secret",
		IDToken: "someone-elses-token", Audience: issuer, Resource: mcpURL})
	if !errors.As(err, &oe) || oe.Code != "invalid_grant" || strings.Contains(err.Error(), "someone-elses-token") {
		t.Fatalf("refused exchange: %v", err)
	}
	// An authorization server that does not announce the profile is refused before any exchange.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": "http://" + r.Host, "token_endpoint": "http://" + r.Host + "/token"})
	}))
	defer plain.Close()
	if _, err := IDJAGTokenEndpoint(ctx, nil, plain.URL); err == nil || !strings.Contains(err.Error(), "ID-JAG") {
		t.Fatalf("server without the profile: %v", err)
	}
}
