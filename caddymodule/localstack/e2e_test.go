package localstack_test

// End-to-end tests of the README's local stack: bin/caddy built by ./xcaddy.sh runs
// `mcpgate-local` (IdP with development login + mcp_auth gateway over HTTPS with Caddy's
// internal CA + the demo backend), with the backend pointed at a fake GitHub API. Clients:
// the project's own client library, the official MCP TypeScript SDK, and headless Chromium.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/client"
	"github.com/mcpgate/mcpgate/internal/testutil"
	"github.com/mcpgate/mcpgate/mcpbackend/githubfake"
)

func newClient(t *testing.T, s *stack, openURL func(string) error) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{
		MCPURL:       s.MCPURL,
		CACertFile:   s.CAFile,
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

func resultJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// 1. The project's client: registration, login (no person), token, tools/list, tools/call
// list_repositories; the fake GitHub receives exactly the signed-in user's GitHub token.
func TestLocalStackProjectClient(t *testing.T) {
	gh := githubfake.NewDemo()
	ghSrv := httptest.NewServer(gh)
	defer ghSrv.Close()
	s := startStack(t, ghSrv.URL)
	ctx := withTimeout(t, 3*time.Minute)

	c := newClient(t, s, s.headlessLogin(t, "alice", githubfake.AliceToken))
	if err := c.Login(ctx); err != nil {
		t.Fatalf("login: %v", err)
	}
	tools, err := c.Tools(ctx)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tl := range tools {
		names = append(names, tl.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "list_repositories") {
		t.Fatalf("tools/list = %v, want list_repositories among them", names)
	}
	res, err := c.Call(ctx, "list_repositories", map[string]any{"per_page": 100})
	if err != nil {
		t.Fatalf("tools/call: %v", err)
	}
	if res.IsError {
		t.Fatalf("list_repositories failed: %s", client.ResultText(res))
	}
	checkAliceRepos(t, resultJSON(t, res.StructuredContent), gh)
	for _, line := range strings.Split(s.stderr.String(), "\n") {
		if strings.Contains(line, githubfake.AliceToken) {
			t.Fatalf("the stack's log contains alice's GitHub token:\n%s", strings.ReplaceAll(line, githubfake.AliceToken, "<alice's token>"))
		}
	}

	s.checkMetricsAndFiles(t)
}

// 4. Two users at once: every backend call carries its own user's GitHub token.
func TestLocalStackTwoUsers(t *testing.T) {
	gh := githubfake.NewDemo()
	ghSrv := httptest.NewServer(gh)
	defer ghSrv.Close()
	s := startStack(t, ghSrv.URL)
	ctx := withTimeout(t, 3*time.Minute)

	users := []struct{ login, token string }{{"alice", githubfake.AliceToken}, {"bob", githubfake.BobToken}}
	clients := make([]*client.Client, len(users))
	for i, u := range users {
		clients[i] = newClient(t, s, s.headlessLogin(t, u.login, u.token))
		if err := clients[i].Login(ctx); err != nil {
			t.Fatalf("%s login: %v", u.login, err)
		}
	}
	gh.Reset()
	const calls = 8
	var wg sync.WaitGroup
	errs := make(chan error, len(users)*calls)
	for i, u := range users {
		for range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := clients[i].Call(ctx, "get_user_info", nil)
				if err != nil {
					errs <- fmt.Errorf("%s: %v", u.login, err)
					return
				}
				if got := resultJSON(t, res.StructuredContent); !strings.Contains(got, `"login":"`+u.login+`"`) {
					errs <- fmt.Errorf("%s got someone else's identity: %.300s", u.login, got)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	count := map[string]int{}
	for _, tok := range gh.Tokens() {
		count[tok]++
	}
	if count[githubfake.AliceToken] != calls || count[githubfake.BobToken] != calls || len(count) != 2 {
		t.Fatalf("GitHub saw tokens %v (redacted keys), want %d of alice's and %d of bob's and nothing else",
			redactKeys(count), calls, calls)
	}
}

// 5. After logout the revoked refresh token can't mint new tokens.
func TestLocalStackLogoutRevokesRefreshToken(t *testing.T) {
	gh := githubfake.NewDemo()
	ghSrv := httptest.NewServer(gh)
	defer ghSrv.Close()
	s := startStack(t, ghSrv.URL)
	ctx := withTimeout(t, 3*time.Minute)

	cacheDir := t.TempDir()
	c, err := client.New(client.Config{
		MCPURL: s.MCPURL, CACertFile: s.CAFile, CacheDir: cacheDir,
		OpenURL: s.headlessLogin(t, "alice", githubfake.AliceToken), Stdout: io.Discard, Stderr: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(ctx); err != nil {
		t.Fatalf("login: %v", err)
	}
	refresh, clientID := cachedRefreshToken(t, cacheDir)
	if err := c.Logout(ctx); err != nil {
		t.Fatalf("logout: %v", err)
	}
	resp, err := s.HTTPClient().PostForm(s.IdPURL+"/token", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {clientID},
		"resource": {s.MCPURL},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error       string `json:"error"`
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusBadRequest || body.Error != "invalid_grant" || body.AccessToken != "" {
		t.Fatalf("refresh after logout: status %d, error %q, access token issued: %v; want 400 invalid_grant",
			resp.StatusCode, body.Error, body.AccessToken != "")
	}
}

// cachedRefreshToken reads the refresh token and client id the client cached.
func cachedRefreshToken(t *testing.T, dir string) (refresh, clientID string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var rec struct {
			RefreshToken string `json:"refresh_token"`
			ClientID     string `json:"client_id"`
		}
		if json.Unmarshal(b, &rec) == nil && rec.RefreshToken != "" {
			refresh, clientID = rec.RefreshToken, rec.ClientID
		}
		return nil
	})
	if err != nil || refresh == "" {
		t.Fatalf("no cached refresh token in %s (err %v)", dir, err)
	}
	return refresh, clientID
}

// nodeDir prepares the Node.js project of the tests that use clients nobody here wrote
// (npm ci when node_modules is missing) and returns its path.
func nodeDir(t *testing.T) string {
	return testutil.NodeProject(t, filepath.Join("testdata", "node"), "@modelcontextprotocol/sdk")
}

// 2. The official MCP TypeScript SDK runs its own OAuth flow headlessly, then calls a tool.
func TestLocalStackTypeScriptSDK(t *testing.T) {
	dir := nodeDir(t)
	gh := githubfake.NewDemo()
	ghSrv := httptest.NewServer(gh)
	defer ghSrv.Close()
	s := startStack(t, ghSrv.URL)

	cmd := exec.CommandContext(withTimeout(t, 2*time.Minute), "node", "sdk-client.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "MCP_URL="+s.MCPURL, "NODE_EXTRA_CA_CERTS="+s.CAFile,
		"LOGIN_USER=bob", "LOGIN_GITHUB_TOKEN="+githubfake.BobToken)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("TypeScript SDK client: %v\nstderr:\n%s", err, stderr.String())
	}
	var got struct {
		SawUnauthorized    bool           `json:"sawUnauthorized"`
		RegisteredClientID string         `json:"registeredClientId"`
		Tools              []string       `json:"tools"`
		IsError            bool           `json:"isError"`
		Structured         map[string]any `json:"structured"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("SDK client output %q: %v", out, err)
	}
	if !got.SawUnauthorized || got.RegisteredClientID == "" {
		t.Fatalf("the SDK did not go through 401 + dynamic registration: %+v", got)
	}
	if got.IsError || !strings.Contains(resultJSON(t, got.Structured), "tools") {
		t.Fatalf("list_repositories through the SDK: isError=%v structured=%.300s", got.IsError, resultJSON(t, got.Structured))
	}
	for i, tok := range gh.Tokens() {
		if tok != githubfake.BobToken {
			t.Fatalf("GitHub request %d carried another token than bob's", i)
		}
	}
}

// 3. A real browser goes through the IdP's login and consent pages as a person would. The
// screenshots are kept in bin/e2e-artifacts (or $MCPGATE_ARTIFACTS).
func TestLocalStackBrowserLogin(t *testing.T) {
	dir := nodeDir(t)
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("this test needs Chromium (Debian's chromium package) at %s", chromium)
	}
	artifacts := os.Getenv("MCPGATE_ARTIFACTS")
	if artifacts == "" {
		artifacts = filepath.Join(repoRoot(t), "bin", "e2e-artifacts")
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	gh := githubfake.NewDemo()
	ghSrv := httptest.NewServer(gh)
	defer ghSrv.Close()
	s := startStack(t, ghSrv.URL)
	ctx := withTimeout(t, 3*time.Minute)

	var browserOut strings.Builder
	c := newClient(t, s, func(authURL string) error {
		cmd := exec.CommandContext(ctx, "node", "browser-login.mjs", authURL)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CHROMIUM="+chromium, "SCREENSHOT_DIR="+artifacts,
			"LOGIN_USER=alice", "LOGIN_GITHUB_TOKEN="+githubfake.AliceToken)
		cmd.Stdout, cmd.Stderr = &browserOut, &browserOut
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("browser: %v\n%s", err, browserOut.String())
		}
		return nil
	})
	if err := c.Login(ctx); err != nil {
		t.Fatalf("login through Chromium: %v\n%s", err, browserOut.String())
	}
	for _, shot := range []string{"login.png", "consent.png"} {
		fi, err := os.Stat(filepath.Join(artifacts, shot))
		if err != nil || fi.Size() < 1000 {
			t.Fatalf("screenshot %s missing or empty: %v", shot, err)
		}
	}
	res, err := c.Call(ctx, "get_user_info", nil)
	if err != nil || res.IsError {
		t.Fatalf("get_user_info after browser login: %v %v", err, res)
	}
	if got := resultJSON(t, res.StructuredContent); !strings.Contains(got, `"login":"alice"`) {
		t.Fatalf("get_user_info = %.300s, want alice", got)
	}
}

func redact(tok string) string {
	if len(tok) > 8 {
		return tok[:4] + "…"
	}
	return tok
}

func redactKeys(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[redact(k)] += v
	}
	return out
}
