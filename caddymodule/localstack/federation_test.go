package localstack_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"

	// mcp_idp and mcp_auth.
	_ "github.com/mcpgate/mcpgate/caddymodule"
	"github.com/mcpgate/mcpgate/client"
	"github.com/mcpgate/mcpgate/internal/caddyrun"
	"github.com/mcpgate/mcpgate/mcpbackend"
	"github.com/mcpgate/mcpgate/mcpbackend/githubfake"
)

// A federated user through the whole stack (issue 18): one Caddy in this test process (admin
// off, plain HTTP on free loopback ports) serves mcp_idp, whose only way to sign in is an
// upstream OpenID provider, and mcp_auth with token exchange at that IdP in front of the demo MCP
// backend. The provider is zitadel/oidc's example OP, which this project did not write, on
// httptest; GitHub is githubfake with its OAuth app flow, which the IdP uses only to link
// accounts (github { link_only }). One headless Chromium is every person's browser; the MCP
// client is the project's client package.

// corpDirectory is the example OP's user store (storage.UserStore): ada in the allowed email
// domain, mallory outside it. Both emails are verified.
type corpDirectory map[string]*storage.User

func (d corpDirectory) GetUserByID(id string) *storage.User { return d[id] }

func (d corpDirectory) GetUserByUsername(name string) *storage.User {
	for _, u := range d {
		if u.Username == name {
			return u
		}
	}
	return nil
}

func (d corpDirectory) ExampleClientID() string { return storage.ServiceUserID }

const (
	corpDomain    = "corp.example"
	adaID         = "ada-7"
	adaEmail      = "ada@" + corpDomain
	adaPassword   = "ada-correct-horse"
	malloryEmail  = "mallory@elsewhere.example"
	malloryPass   = "mallory-battery-staple"
	corpDisplay   = "Corp SSO"
	ghAppClientID = "mcpgate-github-app"
	opClientID    = "mcpgate-idp"
)

// federatedStack is the running test setup.
type federatedStack struct {
	opIssuer string // the upstream OpenID provider
	idpURL   string // mcp_idp's issuer
	mcpURL   string // mcp_auth's resource
	logFile  string // Caddy's log, DEBUG level
	gh       *githubfake.Fake
	secrets  map[string]string // name -> value that must never be logged
}

func randomSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// startFederatedStack starts the OP, the fake GitHub, the backend and Caddy.
func startFederatedStack(t *testing.T) *federatedStack {
	t.Helper()
	// Caddy, in process, keeps its storage and autosave below these.
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())

	s := &federatedStack{
		logFile: filepath.Join(t.TempDir(), "caddy.log"),
		gh:      githubfake.NewDemo(),
		secrets: map[string]string{
			"gateway secret": randomSecret(t), "GitHub app secret": randomSecret(t), "OP client secret": randomSecret(t),
			"IdP encryption key":   base64.StdEncoding.EncodeToString([]byte(randomSecret(t))),
			"alice's GitHub token": githubfake.AliceToken, "ada's password": adaPassword, "mallory's password": malloryPass,
		},
	}
	ghSrv := httptest.NewServer(githubfake.NewOAuth(s.gh, ghAppClientID, s.secrets["GitHub app secret"]))
	t.Cleanup(ghSrv.Close)

	backend, err := mcpbackend.NewHTTPHandler(mcpbackend.Options{GitHubAPIURL: ghSrv.URL})
	if err != nil {
		t.Fatal(err)
	}
	be := httptest.NewServer(backend)
	t.Cleanup(be.Close)

	idpPort, mcpPort := freePort(t), freePort(t)
	s.idpURL = "http://127.0.0.1:" + idpPort
	s.mcpURL = "http://127.0.0.1:" + mcpPort + "/mcp"

	op := httptest.NewUnstartedServer(nil)
	s.opIssuer = "http://" + op.Listener.Addr().String()
	users := corpDirectory{
		adaID: {ID: adaID, Username: adaEmail, Password: adaPassword, FirstName: "Ada", LastName: "Lovelace",
			Email: adaEmail, EmailVerified: true},
		"mallory-1": {ID: "mallory-1", Username: malloryEmail, Password: malloryPass, FirstName: "Mallory",
			LastName: "Outsider", Email: malloryEmail, EmailVerified: true},
	}
	op.Config.Handler = exampleop.SetupServer(s.opIssuer, storage.NewStorage(users), nil, false)
	// The example OP keeps its clients in a package variable: register mcp_idp, with the redirect
	// URI docs/idp.md says to register, before the OP serves anything.
	storage.RegisterClients(storage.WebClient(opClientID, s.secrets["OP client secret"], s.idpURL+"/oidc/corp/callback"))
	op.Start()
	t.Cleanup(op.Close)

	caddyrun.Load(t, fmt.Sprintf(`{
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
	bind 127.0.0.1
	mcp_idp {
		issuer %[2]s
		data_dir %[3]s
		encryption_key %[16]s
		github {
			client_id %[4]s
			client_secret %[5]s
			base_url %[6]s
			api_url %[6]s
			link_only
		}
		oidc corp {
			display_name "%[7]s"
			issuer %[8]s
			client_id %[9]s
			client_secret %[10]s
			allowed_email_domains %[11]s
			token_claims email
		}
		exchange_client gateway %[12]s %[13]s
		default_resource %[13]s
		scopes mcp:tools
	}
}

http://127.0.0.1:%[14]s {
	bind 127.0.0.1
	mcp_auth {
		resource %[13]s
		issuer %[2]s
		scopes_supported mcp:tools
		required_scopes mcp:tools
		upstream_token token_exchange {
			token_endpoint %[2]s/token
			client_id gateway
			client_secret %[12]s
			audience %[6]s
		}
	}
	reverse_proxy %[15]s
}
`, s.logFile, s.idpURL, t.TempDir(), ghAppClientID, s.secrets["GitHub app secret"], ghSrv.URL,
		corpDisplay, s.opIssuer, opClientID, s.secrets["OP client secret"], corpDomain,
		s.secrets["gateway secret"], s.mcpURL, mcpPort, strings.TrimPrefix(be.URL, "http://"),
		s.secrets["IdP encryption key"]))
	for _, port := range []string{idpPort, mcpPort} {
		waitAccepting(t, "127.0.0.1:"+port)
	}
	return s
}

// waitAccepting waits (bounded) until something accepts connections on hostport.
func waitAccepting(t *testing.T, hostport string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", hostport)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", hostport, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signInAtOP has who open authURL, which must lead straight to the OP's login form (one upstream,
// no other way to sign in), and sign in there as username; it returns the page that follows.
func (s *federatedStack) signInAtOP(b *browser, who, authURL, username, password string) (browserPage, error) {
	pg, err := b.Goto(who, authURL)
	if err != nil {
		return pg, err
	}
	if !strings.HasPrefix(pg.URL, s.opIssuer+"/") || !strings.Contains(pg.Text, "Password") {
		return pg, fmt.Errorf("%s did not land on the OP's login form but on %s (%d %q): %.300s", who, pg.URL, pg.Status, pg.Title, pg.Text)
	}
	if err := b.Shot(who, "federated-"+who+"-op-login"); err != nil {
		return pg, err
	}
	if err := b.Fill(who, "input[name=username]", username); err != nil {
		return pg, err
	}
	if err := b.Fill(who, "input[name=password]", password); err != nil {
		return pg, err
	}
	return b.Click(who, "form button[type=submit]")
}

// TestFederatedUserThroughGateway: a user who signs in through the company's OpenID provider
// (1) gets 403 upstream_account_not_linked from the gateway, not a 500, (2) links GitHub on the
// IdP's /account page, (3) then calls the tool with their own GitHub token, under the stable
// oidc: subject; (4) a user outside the allowed email domain gets the refusal page and no token.
func TestFederatedUserThroughGateway(t *testing.T) {
	dir := nodeDir(t)
	s := startFederatedStack(t)
	b := startBrowser(t, dir)
	ctx := withTimeout(t, 4*time.Minute)

	// Ada signs in: the OP's form, then our consent page, which says GitHub is not linked; she
	// approves without linking.
	cacheDir := t.TempDir()
	var consent browserPage
	c, err := client.New(client.Config{
		MCPURL: s.mcpURL, CacheDir: cacheDir, LoginTimeout: 2 * time.Minute,
		Stdout: io.Discard, Stderr: io.Discard,
		OpenURL: func(authURL string) error {
			pg, err := s.signInAtOP(b, "ada", authURL, adaEmail, adaPassword)
			if err != nil {
				return err
			}
			if pg.Status != http.StatusOK || !strings.HasPrefix(pg.URL, s.idpURL+"/consent") {
				return fmt.Errorf("after the OP's login: %s %d %q, want our consent page: %.500s", pg.URL, pg.Status, pg.Title, pg.Text)
			}
			consent = pg
			if err := b.Shot("ada", "federated-ada-consent"); err != nil {
				return err
			}
			pg, err = b.Click("ada", "button[value=approve]")
			if err != nil {
				return err
			}
			au, _ := url.Parse(authURL)
			if redirect := au.Query().Get("redirect_uri"); redirect == "" || !strings.HasPrefix(pg.URL, redirect) {
				return fmt.Errorf("after approving: %s %d, want the client's redirect URI %s", pg.URL, pg.Status, redirect)
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Login(ctx); err != nil {
		t.Fatalf("ada's login: %v", err)
	}
	if !strings.Contains(consent.Text, "Your GitHub account is not linked") {
		t.Errorf("the consent page does not say that GitHub is not linked:\n%s", consent.Text)
	}
	accessToken := cachedAccessToken(t, cacheDir)
	s.secrets["ada's access token"] = accessToken

	// 1. No GitHub link yet: the documented 403, for the client and on the wire, and nothing
	// reaches the backend's GitHub.
	linkURL := s.idpURL + "/account"
	wantDesc := "link your GitHub account at " + linkURL + ", then retry"
	s.gh.Reset()
	if res, err := c.Call(ctx, "get_user_info", nil); err == nil {
		t.Fatalf("get_user_info without a GitHub link succeeded: %s", client.ResultText(res))
	} else if msg := err.Error(); !strings.Contains(msg, "403") || !strings.Contains(msg, wantDesc) {
		t.Fatalf("get_user_info without a GitHub link: %v\nwant the 403 saying %q", err, wantDesc)
	}
	status, body := postToolCall(t, s.mcpURL, accessToken, "get_user_info")
	var rej struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
		LinkURL          string `json:"link_url"`
	}
	if err := json.Unmarshal(body, &rej); err != nil || status != http.StatusForbidden ||
		rej.Error != "upstream_account_not_linked" || rej.LinkURL != linkURL || rej.ErrorDescription != wantDesc {
		t.Fatalf("tools/call without a GitHub link: %d %s\nwant 403 {upstream_account_not_linked, %q, link_url %s}", status, body, wantDesc, linkURL)
	}
	if n := len(s.gh.Requests()); n != 0 {
		t.Fatalf("GitHub received %d request(s) for a user without a link", n)
	}

	// 2. Ada links GitHub on /account, the page the 403 names, through GitHub's (fake) OAuth.
	acct, err := b.Goto("ada", rej.LinkURL)
	if err != nil {
		t.Fatal(err)
	}
	if acct.Status != http.StatusOK || acct.Title != "Your account" || !strings.Contains(acct.Text, "not linked") {
		t.Fatalf("/account before linking: %s %d %q: %.500s", acct.URL, acct.Status, acct.Title, acct.Text)
	}
	shownSub := regexp.MustCompile(`\((oidc:[A-Za-z0-9_-]+)\)`).FindStringSubmatch(acct.Text)
	if shownSub == nil {
		t.Fatalf("/account shows no oidc: subject: %s", acct.Text)
	}
	mustShot(t, b, "ada", "federated-ada-account")
	chooser, err := b.Click("ada", `a:has-text("Link GitHub account")`)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(chooser.Title, "GitHub") {
		t.Fatalf("Link GitHub account led to %s %d %q, want GitHub's sign-in page", chooser.URL, chooser.Status, chooser.Title)
	}
	mustShot(t, b, "ada", "federated-ada-github")
	linked, err := b.Click("ada", `a.user:has-text("alice")`)
	if err != nil {
		t.Fatal(err)
	}
	if linked.Status != http.StatusOK || !strings.HasPrefix(linked.URL, linkURL) ||
		!strings.Contains(linked.Text, "GitHub is linked.") || !strings.Contains(linked.Text, "linked as alice") {
		t.Fatalf("after GitHub's sign-in: %s %d %q, want /account saying GitHub is linked as alice: %.500s", linked.URL, linked.Status, linked.Title, linked.Text)
	}
	mustShot(t, b, "ada", "federated-ada-linked")

	// 3. The same call now works, with alice's GitHub token and nobody else's.
	s.gh.Reset()
	res, err := c.Call(ctx, "get_user_info", nil)
	if err != nil || res.IsError {
		t.Fatalf("get_user_info after linking: %v %v", err, res)
	}
	if got := resultJSON(t, res.StructuredContent); !strings.Contains(got, `"login":"alice"`) {
		t.Fatalf("get_user_info after linking = %.300s, want GitHub's alice", got)
	}
	toks := s.gh.Tokens()
	if len(toks) == 0 {
		t.Fatal("the fake GitHub received no request from the backend")
	}
	for i, tok := range toks {
		if tok != githubfake.AliceToken {
			t.Fatalf("GitHub request %d carried token %q, want alice's", i, redact(tok))
		}
	}
	// The access token names ada by the stable subject docs/idp.md describes: a hash of the
	// upstream issuer and subject (computed as idp.oidcSubject does), never her email, which it
	// carries as a claim of its own (token_claims email).
	claims := jwtPayload(t, cachedAccessToken(t, cacheDir))
	h := sha256.Sum256([]byte("mcpgate oidc subject v1\x00" + s.opIssuer + "\x00" + adaID))
	wantSub := "oidc:" + base64.RawURLEncoding.EncodeToString(h[:20])
	if claims["sub"] != wantSub || shownSub[1] != wantSub || claims["email"] != adaEmail || claims["iss"] != s.idpURL {
		t.Fatalf("access token sub %v, email %v, iss %v; /account shows %s; want sub %s (not the email), email %s, iss %s",
			claims["sub"], claims["email"], claims["iss"], shownSub[1], wantSub, adaEmail, s.idpURL)
	}

	// 4. Mallory's email is outside corp.example: the IdP's refusal page, no code for the client,
	// no token, no session at the IdP.
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var refused, afterwards browserPage
	var browserErr error
	c2, err := client.New(client.Config{
		MCPURL: s.mcpURL, CacheDir: t.TempDir(), LoginTimeout: 2 * time.Minute,
		Stdout: io.Discard, Stderr: io.Discard,
		OpenURL: func(authURL string) error {
			// Whatever the browser shows, no code will come: end the client's wait.
			defer cancel()
			if refused, browserErr = s.signInAtOP(b, "mallory", authURL, malloryEmail, malloryPass); browserErr != nil {
				return browserErr
			}
			if browserErr = b.Shot("mallory", "federated-mallory-refused"); browserErr != nil {
				return browserErr
			}
			afterwards, browserErr = b.Goto("mallory", s.idpURL+"/account")
			return browserErr
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c2.Close() })
	err = c2.Login(lctx)
	if browserErr != nil {
		t.Fatal(browserErr)
	}
	wantRefusal := "Your " + corpDisplay + " account is not allowed to use this service."
	if refused.Status != http.StatusForbidden || !strings.HasPrefix(refused.URL, s.idpURL+"/oidc/corp/callback") ||
		!strings.Contains(refused.Text, wantRefusal) {
		t.Fatalf("mallory after the OP's login: %s %d %q: %.500s\nwant 403 at the IdP's callback saying %q",
			refused.URL, refused.Status, refused.Title, refused.Text, wantRefusal)
	}
	if err == nil {
		t.Fatal("mallory's login succeeded")
	}
	if st, serr := c2.Status(); serr != nil || st.LoggedIn {
		t.Fatalf("mallory's client holds a token after the refusal: %+v %v", st, serr)
	}
	if afterwards.Title == "Your account" || strings.HasPrefix(afterwards.URL, s.idpURL+"/account") {
		t.Fatalf("mallory has a session at the IdP after the refusal: /account shows %s %q", afterwards.URL, afterwards.Title)
	}

	s.checkLog(t)
}

// checkLog fails the test if Caddy's log holds a secret, a password or a token, or an error
// entry (everything here was the users' doing, not a fault: STYLE.md logs it at info at most),
// and unless it records the policy refusal.
func (s *federatedStack) checkLog(t *testing.T) {
	t.Helper()
	logs, err := os.ReadFile(s.logFile)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range s.secrets {
		if strings.Contains(string(logs), v) {
			t.Errorf("Caddy's log contains %s", name)
		}
	}
	for _, line := range strings.Split(string(logs), "\n") {
		var entry struct {
			Level  string `json:"level"`
			Logger string `json:"logger"`
			Msg    string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && (entry.Level == "error" || entry.Level == "panic" || entry.Level == "fatal") {
			t.Errorf("Caddy logged an error: %s: %s", entry.Logger, entry.Msg)
		}
	}
	if !strings.Contains(string(logs), "upstream sign-in refused by policy") {
		t.Errorf("Caddy's log does not record mallory's refusal")
	}
}

func mustShot(t *testing.T, b *browser, who, name string) {
	t.Helper()
	if err := b.Shot(who, name); err != nil {
		t.Fatal(err)
	}
}

// postToolCall posts one tools/call to mcpURL with the bearer token and returns the answer.
func postToolCall(t *testing.T, mcpURL, token, tool string) (int, []byte) {
	t.Helper()
	msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q,"arguments":{}}}`, tool)
	req, err := http.NewRequest(http.MethodPost, mcpURL, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, body
}

// cachedAccessToken reads the access token the client cached in dir.
func cachedAccessToken(t *testing.T, dir string) string {
	t.Helper()
	var tok string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var rec struct {
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal(b, &rec) == nil && rec.AccessToken != "" {
			tok = rec.AccessToken
		}
		return nil
	})
	if err != nil || tok == "" {
		t.Fatalf("no cached access token in %s (err %v)", dir, err)
	}
	return tok
}

// jwtPayload decodes a JWT's claims without checking anything (the gateway has checked them).
func jwtPayload(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("the access token is not a JWT (%d parts)", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}
