package localstack_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/pyenv"
	"github.com/mcpgate/mcpgate/internal/testutil"
	"github.com/mcpgate/mcpgate/mcpbackend/githubfake"
)

// 6. FastMCP's Python client (the framework the original demo was built on) runs its own OAuth
// flow against the stack: the script prints the authorization URL where FastMCP would open a
// browser, this test signs in as alice on it, the IdP redirects to FastMCP's own loopback
// callback server, and FastMCP finishes the flow, lists the tools and calls list_repositories.
func TestLocalStackFastMCP(t *testing.T) {
	python := pythonVenv(t)
	script, err := filepath.Abs(filepath.Join("testdata", "python", "fastmcp_client.py"))
	if err != nil {
		t.Fatal(err)
	}
	gh := githubfake.NewDemo()
	ghSrv := httptest.NewServer(gh)
	defer ghSrv.Close()
	s := startStack(t, ghSrv.URL)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tokenDir, home := t.TempDir(), t.TempDir()
	cmd := exec.CommandContext(ctx, python, script)
	cmd.Dir = t.TempDir()
	// FastMCP keeps settings under the user's data directory: a throwaway home keeps the
	// user's own out of the test and the test's out of the user's.
	cmd.Env = append(os.Environ(), "MCP_URL="+s.MCPURL, "TOKEN_DIR="+tokenDir, "SSL_CERT_FILE="+s.CAFile,
		"HOME="+home, "XDG_DATA_HOME="+filepath.Join(home, "data"), "XDG_CONFIG_HOME="+filepath.Join(home, "config"),
		"XDG_CACHE_HOME="+filepath.Join(home, "cache"), "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1")
	stderr := new(testutil.SyncBuffer)
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	// Read FastMCP's stdout; each AUTHORIZE line is a browser FastMCP wanted to open.
	login := s.headlessLogin(t, "alice", githubfake.AliceToken)
	var output strings.Builder
	var result string
	logins := 0
	loginErr := make(chan error, 4)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		output.WriteString(line + "\n")
		switch {
		case strings.HasPrefix(line, "AUTHORIZE "):
			logins++
			go func(authURL string) {
				err := waitForCallback(ctx, authURL)
				if err == nil {
					err = login(authURL)
				}
				if err != nil {
					cancel() // FastMCP would otherwise wait for its callback until it times out.
				}
				loginErr <- err
			}(strings.TrimPrefix(line, "AUTHORIZE "))
		case strings.HasPrefix(line, "{"):
			result = line
		}
	}
	waitErr := cmd.Wait()
	cancel() // FastMCP has exited: a login still waiting for its callback server would wait in vain.
	var loginErrs []error
	for range logins {
		if err := <-loginErr; err != nil {
			loginErrs = append(loginErrs, err)
		}
	}
	if waitErr != nil || len(loginErrs) > 0 {
		t.Fatalf("FastMCP client: %v; headless login on its authorization URL: %v\nstdout:\n%s\nstderr:\n%s",
			waitErr, errors.Join(loginErrs...), output.String(), stderr.String())
	}
	if logins != 1 {
		t.Fatalf("FastMCP asked for %d browser logins, want exactly 1\nstdout:\n%s", logins, output.String())
	}

	var got struct {
		FastMCPVersion     string         `json:"fastmcpVersion"`
		RegisteredClientID string         `json:"registeredClientId"`
		RedirectURIs       []string       `json:"redirectUris"`
		HasAccessToken     bool           `json:"hasAccessToken"`
		Tools              []string       `json:"tools"`
		IsError            bool           `json:"isError"`
		Structured         map[string]any `json:"structured"`
	}
	if err := json.Unmarshal([]byte(result), &got); err != nil {
		t.Fatalf("FastMCP client's result %q: %v\nstdout:\n%s", result, err, output.String())
	}
	want, err := pyenv.PinnedVersion(filepath.Join("testdata", "python", "requirements.txt"), "fastmcp")
	if err != nil {
		t.Fatal(err)
	}
	if got.FastMCPVersion != want {
		t.Fatalf("the virtual environment runs fastmcp %s, requirements.txt pins %s", got.FastMCPVersion, want)
	}
	if got.RegisteredClientID == "" || !got.HasAccessToken {
		t.Fatalf("FastMCP did not finish registration and login: %+v", got)
	}
	if len(got.RedirectURIs) != 1 || !regexp.MustCompile(`^http://localhost:\d+/callback$`).MatchString(got.RedirectURIs[0]) {
		t.Fatalf("FastMCP registered redirect URIs %v, want its one loopback callback", got.RedirectURIs)
	}
	if !strings.Contains(","+strings.Join(got.Tools, ",")+",", ",list_repositories,") {
		t.Fatalf("tools/list through FastMCP = %v, want list_repositories among them", got.Tools)
	}
	structured := resultJSON(t, got.Structured)
	if got.IsError {
		t.Fatalf("list_repositories through FastMCP failed: %.500s", structured)
	}
	checkAliceRepos(t, structured, gh)

	// No secret in anything a person would read: the stack's log, FastMCP's output and log.
	secrets := map[string]string{"alice's GitHub token": githubfake.AliceToken}
	for name, tok := range storedTokens(t, tokenDir) {
		secrets[name] = tok
	}
	if secrets["access token"] == "" {
		t.Fatalf("no access token in FastMCP's token store %s", tokenDir)
	}
	for where, text := range map[string]string{
		"the stack's log":  s.stderr.String(),
		"FastMCP's stdout": output.String(),
		"FastMCP's stderr": stderr.String(),
	} {
		for name, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("%s contains the %s", where, name)
			}
		}
	}
}

// waitForCallback waits until the redirect_uri of authURL accepts connections. FastMCP, as
// the MCP Python SDK's OAuthClientProvider drives it, opens the browser first and only then
// starts its callback server; a person takes longer to sign in than that server takes to start,
// the headless login does not.
func waitForCallback(ctx context.Context, authURL string) error {
	u, err := url.Parse(authURL)
	if err != nil {
		return err
	}
	cb, err := url.Parse(u.Query().Get("redirect_uri"))
	if err != nil || cb.Scheme != "http" || cb.Port() == "" {
		return fmt.Errorf("authorization URL has no loopback redirect_uri: %q", u.Query().Get("redirect_uri"))
	}
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "tcp", cb.Host)
		if err == nil {
			return conn.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("FastMCP's callback server %s never listened: %w", cb.Host, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// storedTokens returns the access and refresh tokens FastMCP saved in its token store dir.
func storedTokens(t *testing.T, dir string) map[string]string {
	t.Helper()
	found := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var doc any
		if json.Unmarshal(b, &doc) != nil {
			return nil
		}
		findTokens(doc, found)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// findTokens looks through a decoded JSON document, including JSON held in strings, for the
// access_token and refresh_token members.
func findTokens(v any, found map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && s != "" {
				switch k {
				case "access_token":
					found["access token"] = s
				case "refresh_token":
					found["refresh token"] = s
				}
			}
			findTokens(x, found)
		}
	case []any:
		for _, x := range v {
			findTokens(x, found)
		}
	case string:
		var inner any
		if strings.HasPrefix(strings.TrimSpace(v), "{") && json.Unmarshal([]byte(v), &inner) == nil {
			findTokens(inner, found)
		}
	}
}
