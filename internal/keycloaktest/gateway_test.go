package keycloaktest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// mcp_auth and its token sources, keycloak among them.
	_ "github.com/mcpgate/mcpgate/caddymodule"
	"github.com/mcpgate/mcpgate/client"
	"github.com/mcpgate/mcpgate/internal/caddyrun"
	"github.com/mcpgate/mcpgate/mcpbackend"
	"github.com/mcpgate/mcpgate/mcpbackend/githubfake"
)

// The whole flow through the gateway: a real Caddy, in process (admin off, plain HTTP on a free
// loopback port, which the project's client accepts for a loopback MCP URL), runs mcp_auth with
// the shared Keycloak as issuer and the keycloak token source, in front of reverse_proxy to the
// demo MCP backend, whose GitHub is the shared GitHub fake. Each gateway gets a public client of
// its own in the realm, whose audience mapper names that gateway's MCP URL (the realm's
// mcp-client names testAudience, a fixed URL). Only one Caddy config runs per process, so these
// tests do not run in parallel.

// gatewayOpts varies the gateway's configuration.
type gatewayOpts struct {
	// realm, if set, is the keycloak source's realm (default: the issuer).
	realm string
	// scope, if set, is the gateway's scopes_supported and required_scopes.
	scope string
	// kc is the Keycloak the gateway trusts; default shared.kc.
	kc *Server
	// port is the gateway's port; default a free one.
	port int
	// clientID, if set, is an existing public client whose tokens name the gateway's MCP URL
	// in aud; default: one created for the gateway (createMCPClient).
	clientID string
	// post selects the keycloak source's method post, as the realm's mcp-gateway client.
	post bool
	// noCache turns off the verified-token and upstream-token caches, so that every request
	// asks Keycloak.
	noCache bool
}

// gateway is one loaded Caddy config and the Keycloak client made for it.
type gateway struct {
	kc       *Server
	mcpURL   string
	logFile  string // Caddy's log, DEBUG level
	clientID string // the public client whose tokens carry mcpURL in aud
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startGateway loads Caddy with mcp_auth in front of the demo backend until the test ends, and
// creates the gateway's public client in the realm.
func startGateway(t *testing.T, o gatewayOpts) *gateway {
	t.Helper()
	backend, err := mcpbackend.NewHTTPHandler(mcpbackend.Options{GitHubAPIURL: shared.ghURL})
	if err != nil {
		t.Fatal(err)
	}
	be := httptest.NewServer(backend)
	t.Cleanup(be.Close)

	if o.kc == nil {
		o.kc = shared.kc
	}
	port := o.port
	if port == 0 {
		port = freePort(t)
	}
	g := &gateway{
		kc:      o.kc,
		mcpURL:  fmt.Sprintf("http://127.0.0.1:%d/mcp", port),
		logFile: filepath.Join(t.TempDir(), "caddy.log"),
	}
	var opts []string
	if o.noCache {
		opts = append(opts, "verify_cache_size -1", "upstream_cache_size -1")
	}
	if o.scope != "" {
		opts = append(opts, "scopes_supported "+o.scope, "required_scopes "+o.scope)
	}
	var source []string
	if o.realm != "" {
		source = append(source, "realm "+o.realm)
	}
	if o.post {
		source = append(source, "method post", "client_id "+GatewayClient, "client_secret "+DefaultGatewaySecret)
	}
	if len(source) > 0 {
		opts = append(opts, "upstream_token keycloak {\n\t\t\t"+strings.Join(source, "\n\t\t\t")+"\n\t\t}")
	} else {
		opts = append(opts, "upstream_token keycloak")
	}
	cf := fmt.Sprintf(`{
	log {
		output file %s
		level DEBUG
	}
	admin off
	persist_config off
	auto_https off
	grace_period 1s
}
http://127.0.0.1:%d {
	mcp_auth {
		resource %s
		issuer %s {
			access_token_types JWT
		}
		%s
	}
	reverse_proxy %s
}
`, g.logFile, port, g.mcpURL, o.kc.Issuer(), strings.Join(opts, "\n\t\t"), strings.TrimPrefix(be.URL, "http://"))
	caddyrun.Load(t, cf)
	waitListening(t, port)
	g.clientID = o.clientID
	if g.clientID == "" {
		g.clientID = createMCPClient(t, fmt.Sprintf("mcp-e2e-%d", port), g.mcpURL)
	}
	return g
}

// waitListening waits (bounded) until Caddy accepts connections on port.
func waitListening(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Caddy never listened on %d: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// createMCPClient adds the public client clientID to the realm as the guide in
// docs/providers/keycloak.md does in the admin console (standard flow, PKCE S256, redirect
// http://127.0.0.1/*, and, if audience is not "", an audience mapper "Included Custom Audience" =
// audience of its own), and deletes it when the test ends.
func createMCPClient(t *testing.T, clientID, audience string) string {
	t.Helper()
	rep := map[string]any{
		"clientId": clientID, "enabled": true, "publicClient": true,
		"standardFlowEnabled": true, "implicitFlowEnabled": false, "directAccessGrantsEnabled": false,
		"redirectUris": []string{"http://127.0.0.1/*"},
		"attributes":   map[string]string{"pkce.code.challenge.method": "S256"},
	}
	if audience != "" {
		rep["protocolMappers"] = []map[string]any{{
			"name": "mcp-audience", "protocol": "openid-connect", "protocolMapper": "oidc-audience-mapper",
			"config": map[string]string{
				"included.custom.audience": audience, "access.token.claim": "true",
				"id.token.claim": "false", "introspection.token.claim": "true",
			},
		}}
	}
	createRealmClient(t, rep)
	return clientID
}

// createRealmClient adds the client represented by rep (Keycloak's ClientRepresentation) to the
// realm through the admin API and deletes it when the test ends.
func createRealmClient(t *testing.T, rep map[string]any) {
	t.Helper()
	ctx := context.Background()
	kc := shared.kc
	tok, err := kc.AdminToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := kc.Admin(ctx, tok, http.MethodPost, "/"+RealmName+"/clients", rep, nil); err != nil {
		t.Fatal(err)
	}
	id, err := kc.ClientID(ctx, tok, RealmName, rep["clientId"].(string))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if tok, err := kc.AdminToken(context.Background()); err == nil {
			_ = kc.Admin(context.Background(), tok, http.MethodDelete, "/"+RealmName+"/clients/"+id, nil, nil)
		}
	})
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// githubLogin is an OpenURL hook for the project's client: a fresh Browser signs in at Keycloak
// through the GitHub button and the GitHub fake as login, and the final redirect is delivered
// to the client's loopback callback, as a browser would.
func githubLogin(ctx context.Context, login string, authURLs chan<- string) func(string) error {
	return func(authURL string) error {
		if authURLs != nil {
			authURLs <- authURL
		}
		u, err := url.Parse(authURL)
		if err != nil {
			return err
		}
		redirect := u.Query().Get("redirect_uri")
		if redirect == "" {
			return fmt.Errorf("authorization URL without redirect_uri")
		}
		cb, err := NewBrowser().SignInWithGitHub(ctx, authURL, redirect, GitHubAlias, login)
		if err != nil {
			return err
		}
		resp, err := http.Get(cb.String())
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			return fmt.Errorf("the client's callback answered %s: %s", resp.Status, b)
		}
		return nil
	}
}

// newMCPClient is the project's client for g with the pre-registered client g.clientID.
func newMCPClient(t *testing.T, g *gateway, openURL func(string) error) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{
		MCPURL:       g.mcpURL,
		ClientID:     g.clientID,
		CacheDir:     t.TempDir(),
		OpenURL:      openURL,
		LoginTimeout: 2 * time.Minute,
		Stdout:       io.Discard,
		Stderr:       io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// assertLogClean fails if any of secrets is in Caddy's log, and returns the log.
func (g *gateway) assertLogClean(t *testing.T, secrets map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(g.logFile)
	if err != nil {
		t.Fatalf("reading Caddy's log: %v", err)
	}
	for name, sec := range secrets {
		if sec != "" && strings.Contains(string(b), sec) {
			t.Errorf("%s is in Caddy's log", name)
		}
	}
	return string(b)
}

// repoNames returns the full names in list_repositories' structured result.
func repoNames(t *testing.T, structured any) []string {
	t.Helper()
	b, err := json.Marshal(structured)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Repositories []struct {
			FullName string `json:"full_name"`
		} `json:"repositories"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("list_repositories result %.300s: %v", b, err)
	}
	var names []string
	for _, r := range out.Repositories {
		names = append(names, r.FullName)
	}
	return names
}

func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// jwtRe matches a JWS compact serialization: any Keycloak access, refresh or ID token.
var jwtRe = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.`)

// assertNoTokens fails if Caddy's log holds a JWT (a Keycloak token of any kind), a GitHub-style
// token, or any of secrets.
func (g *gateway) assertNoTokens(t *testing.T, secrets map[string]string) {
	t.Helper()
	log := g.assertLogClean(t, secrets)
	if jwtRe.MatchString(log) {
		t.Errorf("a JWT (Keycloak token) is in Caddy's log")
	}
	if strings.Contains(log, "ghu_") {
		t.Errorf("a GitHub token is in Caddy's log")
	}
	if !strings.Contains(log, `"level":"debug"`) {
		t.Errorf("Caddy's log has no debug line: the check above saw less than it should")
	}
}

// call sends tools/call list_repositories to the gateway with bearer (if not "") and returns the
// status, the response headers and the body.
func (g *gateway) call(t *testing.T, bearer string) (int, http.Header, string) {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_repositories","arguments":{"per_page":100}}}`
	req, _ := http.NewRequest(http.MethodPost, g.mcpURL, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-06-18")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// signInAt signs login in at g's client: through GitHub when password is "", else with
// Keycloak's password form.
func (g *gateway) signInAt(t *testing.T, login, password string) string {
	t.Helper()
	f := CodeFlow{ClientID: g.clientID, Login: login, Password: password, LoginHint: true}
	if password == "" {
		f.Provider = GitHubAlias
	}
	tok, err := g.kc.SignIn(context.Background(), f)
	if err != nil {
		t.Fatalf("sign-in of %s: %v", login, err)
	}
	return tok.AccessToken
}

// wantRejection checks a gateway refusal: status, the JSON error code and, for 401, the
// challenge's error.
func wantRejection(t *testing.T, what string, st int, hdr http.Header, body string, status int, code string) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal([]byte(body), &e)
	if st != status || e.Error != code {
		t.Errorf("%s: %d %.300s, want %d with error %q", what, st, body, status, code)
	}
	if status == http.StatusUnauthorized && !strings.Contains(hdr.Get("WWW-Authenticate"), `error="`+code+`"`) {
		t.Errorf("%s: WWW-Authenticate %q lacks error=%q", what, hdr.Get("WWW-Authenticate"), code)
	}
}

// (1) The whole flow as users meet it: the project's client is sent to Keycloak by the gateway's
// 401 (PRM, then Keycloak's metadata), logs in with the pre-registered public client through
// Keycloak's GitHub button and the GitHub fake, and calls list_repositories; the gateway fetches
// each user's GitHub token from Keycloak's broker endpoint. Alice and Bob call at once, and every
// GitHub call carries the token of the user it serves.
func TestGatewayWholeFlow(t *testing.T) {
	g := startGateway(t, gatewayOpts{})
	ctx := withTimeout(t, 4*time.Minute)
	users := []struct{ login, token, own, other string }{
		{githubfake.AliceLogin, githubfake.AliceToken, "alice/hello-world", "bob/tools"},
		{githubfake.BobLogin, githubfake.BobToken, "bob/tools", "alice/hello-world"},
	}
	clients := make([]*client.Client, len(users))
	for i, u := range users {
		authURLs := make(chan string, 1)
		clients[i] = newMCPClient(t, g, githubLogin(ctx, u.login, authURLs))
		if err := clients[i].Login(ctx); err != nil {
			t.Fatalf("%s: login: %v", u.login, err)
		}
		q := mustURL(t, <-authURLs).Query()
		// The client found Keycloak from the gateway's 401 and sent the RFC 8707 resource, which
		// Keycloak 26.5 ignores: the audience comes from the client's audience mapper.
		if q.Get("resource") != g.mcpURL || q.Get("client_id") != g.clientID || q.Get("code_challenge_method") != "S256" {
			t.Errorf("%s: authorization request resource=%q client_id=%q code_challenge_method=%q",
				u.login, q.Get("resource"), q.Get("client_id"), q.Get("code_challenge_method"))
		}
	}
	shared.gh.Reset()
	const calls = 4
	type result struct {
		user  int
		names []string
		err   error
	}
	results := make(chan result, len(users)*calls)
	for i := range users {
		for range calls {
			go func() {
				res, err := clients[i].Call(ctx, "list_repositories", map[string]any{"per_page": 100})
				if err == nil && res.IsError {
					err = fmt.Errorf("tool error: %s", client.ResultText(res))
				}
				r := result{user: i, err: err}
				if err == nil {
					r.names = repoNames(t, res.StructuredContent)
				}
				results <- r
			}()
		}
	}
	for range len(users) * calls {
		r := <-results
		u := users[r.user]
		if r.err != nil {
			t.Errorf("%s: list_repositories: %v", u.login, r.err)
			continue
		}
		joined := strings.Join(r.names, ",")
		if !strings.Contains(joined, u.own) || strings.Contains(joined, u.other) {
			t.Errorf("%s got repositories %v: want %s and not %s", u.login, r.names, u.own, u.other)
		}
	}
	count := map[string]int{}
	for _, tok := range shared.gh.Tokens() {
		switch tok {
		case users[0].token:
			count["alice"]++
		case users[1].token:
			count["bob"]++
		default:
			count["other"]++
		}
	}
	if count["alice"] < calls || count["bob"] < calls || count["other"] != 0 {
		t.Errorf("GitHub calls by token: %v, want at least %d of alice's and of bob's and no other", count, calls)
	}
	g.assertNoTokens(t, map[string]string{"alice's GitHub token": users[0].token, "bob's GitHub token": users[1].token})
}

// (2) A Keycloak user without a GitHub link (carol, password login, broker read-token) passes the
// gateway's token check, and Keycloak's "not associated" answer becomes 403
// upstream_account_not_linked.
func TestGatewayUserNotLinked(t *testing.T) {
	g := startGateway(t, gatewayOpts{})
	carol := g.signInAt(t, Carol, DefaultUserPassword)
	st, hdr, body := g.call(t, carol)
	wantRejection(t, "carol", st, hdr, body, http.StatusForbidden, "upstream_account_not_linked")
	// link_url defaults to the issuer + /account: Keycloak's account console, whose "Linked
	// accounts" page links GitHub.
	var e struct {
		LinkURL string `json:"link_url"`
	}
	if json.Unmarshal([]byte(body), &e) != nil || e.LinkURL != g.kc.Issuer()+"/account" {
		t.Errorf("link_url %q, want %s/account", e.LinkURL, g.kc.Issuer())
	}
	if resp, err := http.Get(e.LinkURL); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET link_url: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	g.assertNoTokens(t, map[string]string{"carol's access token": carol})
}

// (2) Keycloak unreachable for the token source (its realm set to a proxy in front of Keycloak,
// then closed; the shared Keycloak keeps running): 503 temporarily_unavailable with Retry-After,
// after the same request passed through the proxy.
func TestGatewayKeycloakUnreachable(t *testing.T) {
	kcURL := mustURL(t, shared.kc.URL)
	// The Host header must stay Keycloak's: Keycloak (hostname not fixed, as in start-dev) takes
	// its issuer from the request and refuses tokens of another issuer as invalid.
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(kcURL) }})
	defer proxy.Close()
	g := startGateway(t, gatewayOpts{realm: proxy.URL + "/realms/" + RealmName, noCache: true})
	alice := g.signInAt(t, githubfake.AliceLogin, "")
	st, _, body := g.call(t, alice)
	if st != http.StatusOK || !strings.Contains(body, "alice/hello-world") {
		t.Fatalf("through the proxy: %d %.300s", st, body)
	}
	proxy.Close()
	st, hdr, body := g.call(t, alice)
	wantRejection(t, "Keycloak unreachable", st, hdr, body, http.StatusServiceUnavailable, "temporarily_unavailable")
	if hdr.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	g.assertNoTokens(t, map[string]string{"alice's access token": alice})
}

// (2) The user's Keycloak sessions ended by an administrator (admin API: log the user out): the
// access token still verifies at the gateway (signature, exp, aud), but the broker endpoint
// refuses it, and the gateway answers 401 invalid_token so the client signs in again. The
// gateway's caches are off, so the second request reaches Keycloak.
func TestGatewaySessionRevoked(t *testing.T) {
	g := startGateway(t, gatewayOpts{noCache: true})
	ctx := context.Background()
	bob := g.signInAt(t, githubfake.BobLogin, "")
	st, _, body := g.call(t, bob)
	if st != http.StatusOK || !strings.Contains(body, "bob/tools") {
		t.Fatalf("before the logout: %d %.300s", st, body)
	}
	kc := shared.kc
	tok, err := kc.AdminToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var users []struct {
		ID string `json:"id"`
	}
	if err := kc.Admin(ctx, tok, http.MethodGet, "/"+RealmName+"/users?exact=true&username="+githubfake.BobLogin, nil, &users); err != nil || len(users) != 1 {
		t.Fatalf("looking up bob: %v (%d users)", err, len(users))
	}
	if err := kc.Admin(ctx, tok, http.MethodPost, "/"+RealmName+"/users/"+users[0].ID+"/logout", nil, nil); err != nil {
		t.Fatal(err)
	}
	if st, _, body := brokerGET(t, kc, GitHubAlias, bob); st != http.StatusBadRequest || body != `{"errorMessage":"Invalid token."}` {
		t.Errorf("broker endpoint after the logout: %d %.200q", st, body)
	}
	st, hdr, body := g.call(t, bob)
	wantRejection(t, "after the logout", st, hdr, body, http.StatusUnauthorized, "invalid_token")
	g.assertNoTokens(t, map[string]string{"bob's access token": bob})
}

// Keycloak 26.5 without the resource-indicators feature ignores the RFC 8707 resource parameter
// that MCP clients send: the sign-in succeeds, and aud holds what the client's audience mapper
// puts there, not the resource asked for.
func TestResourceParameterIgnored(t *testing.T) {
	const other = "https://other.example/mcp"
	for _, tc := range []struct {
		resource string
	}{{other}, {"not a URL"}} {
		tok, err := shared.kc.SignIn(context.Background(), CodeFlow{
			Login: Carol, Password: DefaultUserPassword, Params: url.Values{"resource": {tc.resource}},
		})
		if err != nil {
			t.Fatalf("resource=%q: %v", tc.resource, err)
		}
		aud := claims(t, tok.AccessToken)["aud"]
		if !contains(aud, testAudience) || contains(aud, tc.resource) {
			t.Errorf("resource=%q: aud %v, want the mapped %s and not the resource", tc.resource, aud, testAudience)
		}
	}
}

// mcpToolsScope creates the client scope "mcp:tools" (included in the token's scope claim) with
// an audience mapper ("Included Custom Audience" = aud), and makes it a realm default client
// scope (Client scopes → Assigned type "Default"), so that clients registered from now on may ask
// for it and get aud with it. Undone when the test ends.
func mcpToolsScope(t *testing.T, aud string) {
	t.Helper()
	ctx := context.Background()
	kc := shared.kc
	tok, err := kc.AdminToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const name = "mcp:tools"
	if err := kc.Admin(ctx, tok, http.MethodPost, "/"+RealmName+"/client-scopes", map[string]any{
		"name": name, "protocol": "openid-connect",
		"attributes": map[string]string{"include.in.token.scope": "true"},
		"protocolMappers": []map[string]any{{
			"name": "mcp-audience", "protocol": "openid-connect", "protocolMapper": "oidc-audience-mapper",
			"config": map[string]string{"included.custom.audience": aud, "access.token.claim": "true", "id.token.claim": "false"},
		}, {
			// The broker endpoint reads resource_access.broker.roles from the token; a client
			// registered with a scope parameter has not the "roles" scope that puts it there.
			"name": "broker-roles", "protocol": "openid-connect", "protocolMapper": "oidc-usermodel-client-role-mapper",
			"config": map[string]string{
				"usermodel.clientRoleMapping.clientId": "broker", "claim.name": "resource_access.${client_id}.roles",
				"multivalued": "true", "jsonType.label": "String", "access.token.claim": "true",
			},
		}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	var scopes []struct{ ID, Name string }
	if err := kc.Admin(ctx, tok, http.MethodGet, "/"+RealmName+"/client-scopes", nil, &scopes); err != nil {
		t.Fatal(err)
	}
	id := ""
	for _, s := range scopes {
		if s.Name == name {
			id = s.ID
		}
	}
	if id == "" {
		t.Fatalf("client scope %s not found after its creation", name)
	}
	if err := kc.Admin(ctx, tok, http.MethodPut, "/"+RealmName+"/default-default-client-scopes/"+id, nil, nil); err != nil {
		t.Fatal(err)
	}
	// The scope's role scope mapping (its "Scope" tab): broker's read-token, for clients without
	// "Full scope allowed".
	broker, err := kc.ClientID(ctx, tok, RealmName, "broker")
	if err != nil {
		t.Fatal(err)
	}
	var role map[string]any
	if err := kc.Admin(ctx, tok, http.MethodGet, "/"+RealmName+"/clients/"+broker+"/roles/read-token", nil, &role); err != nil {
		t.Fatal(err)
	}
	if err := kc.Admin(ctx, tok, http.MethodPost, "/"+RealmName+"/client-scopes/"+id+"/scope-mappings/clients/"+broker, []any{role}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tok, err := kc.AdminToken(context.Background())
		if err != nil {
			return
		}
		_ = kc.Admin(context.Background(), tok, http.MethodDelete, "/"+RealmName+"/default-default-client-scopes/"+id, nil, nil)
		_ = kc.Admin(context.Background(), tok, http.MethodDelete, "/"+RealmName+"/client-scopes/"+id, nil, nil)
	})
}

// (1) Dynamic client registration at Keycloak: anonymous registration from the client is refused
// by the realm's default "Trusted Hosts" policy; with an initial access token (created by the
// admin API, Clients → Initial access token in the console) the project's client registers,
// logs in through GitHub and calls the tool as alice. The gateway requires the scope mcp:tools,
// which the client finds in the challenge and asks for at registration and login; the realm's
// client scope of that name carries the audience mapper. (A realm default client scope without
// the client asking for it is not enough: Keycloak gives a client registered with a scope
// parameter just the scopes it named, and the token then has no aud.) Then bob logs in with a
// client created by the admin after the scope, which gets it as a default scope.
func TestGatewayDynamicRegistration(t *testing.T) {
	g := startGateway(t, gatewayOpts{scope: "mcp:tools"})
	mcpToolsScope(t, g.mcpURL)
	ctx := withTimeout(t, 4*time.Minute)
	newDCRClient := func(token string) *client.Client {
		c, err := client.New(client.Config{
			MCPURL: g.mcpURL, RegistrationToken: token, CacheDir: t.TempDir(),
			OpenURL:      githubLogin(ctx, githubfake.AliceLogin, nil),
			LoginTimeout: 2 * time.Minute, Stdout: io.Discard, Stderr: io.Discard,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}

	err := newDCRClient("").Login(ctx)
	if err == nil || !strings.Contains(err.Error(), "Policy 'Trusted Hosts' rejected request") {
		t.Errorf("anonymous registration: err = %v, want the Trusted Hosts policy's refusal", err)
	} else {
		t.Logf("anonymous registration: %v", err)
	}

	kc := shared.kc
	admin, err := kc.AdminToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var iat struct {
		Token string `json:"token"`
	}
	if err := kc.Admin(ctx, admin, http.MethodPost, "/"+RealmName+"/clients-initial-access",
		map[string]any{"expiration": 600, "count": 1}, &iat); err != nil || iat.Token == "" {
		t.Fatalf("creating an initial access token: %v", err)
	}
	c := newDCRClient(iat.Token)
	if err := c.Login(ctx); err != nil {
		t.Fatalf("login with an initial access token: %v", err)
	}
	var registered []struct {
		ClientID            string   `json:"clientId"`
		Name                string   `json:"name"`
		PublicClient        bool     `json:"publicClient"`
		FullScopeAllowed    bool     `json:"fullScopeAllowed"`
		DefaultClientScopes []string `json:"defaultClientScopes"`
		OptionalScopes      []string `json:"optionalClientScopes"`
	}
	if err := kc.Admin(ctx, admin, http.MethodGet, "/"+RealmName+"/clients?max=200", nil, &registered); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range registered {
		if r.Name != "mcpgate-client" {
			continue
		}
		found = true
		// What makes the mappers on mcp:tools necessary: Keycloak 26.5 gives the registered
		// client the scopes it asked for as optional scopes and only "basic" as default, so
		// neither the realm's "roles" scope nor any other default scope applies to it.
		if !r.PublicClient || !slices.Contains(r.OptionalScopes, "mcp:tools") || slices.Contains(r.DefaultClientScopes, "roles") {
			t.Errorf("registered client: %+v", r)
		}
	}
	if !found {
		t.Errorf("no client named mcpgate-client was registered")
	}
	shared.gh.Reset()
	res, err := c.Call(ctx, "list_repositories", map[string]any{"per_page": 100})
	if err != nil || res.IsError {
		for _, l := range strings.Split(g.assertLogClean(t, nil), "\n") {
			if strings.Contains(l, "unavailable") {
				t.Log(l)
			}
		}
		t.Fatalf("list_repositories: %v", err)
	}
	if names := strings.Join(repoNames(t, res.StructuredContent), ","); !strings.Contains(names, "alice/secret-plans") {
		t.Errorf("repositories %s, want alice's", names)
	}
	for _, tok := range shared.gh.Tokens() {
		if tok != githubfake.AliceToken {
			t.Errorf("a GitHub call carried a token that is not alice's")
		}
	}

	// The guide's pre-registered client (4a), created after the scope: no mapper of its own, the
	// realm default scope mcp:tools gives it aud and the scope the gateway requires.
	pre := createMCPClient(t, "mcp-e2e-scoped", "")
	bob, err := client.New(client.Config{
		MCPURL: g.mcpURL, ClientID: pre, CacheDir: t.TempDir(),
		OpenURL:      githubLogin(ctx, githubfake.BobLogin, nil),
		LoginTimeout: 2 * time.Minute, Stdout: io.Discard, Stderr: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bob.Close() })
	if err := bob.Login(ctx); err != nil {
		t.Fatalf("bob's login with the pre-registered client: %v", err)
	}
	res, err = bob.Call(ctx, "list_repositories", map[string]any{"per_page": 100})
	if err != nil || res.IsError {
		t.Fatalf("bob's list_repositories: %v", err)
	}
	if names := strings.Join(repoNames(t, res.StructuredContent), ","); names != "bob/tools" {
		t.Errorf("bob's repositories %s, want bob/tools", names)
	}
	g.assertNoTokens(t, map[string]string{"the initial access token": iat.Token,
		"alice's GitHub token": githubfake.AliceToken, "bob's GitHub token": githubfake.BobToken})
}
