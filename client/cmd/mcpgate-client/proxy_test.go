package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/client/internal/oauthtest"
	"github.com/mcpgate/mcpgate/internal/testutil"
)

// sdkProject returns the Node.js project that holds the MCP TypeScript SDK (the local stack's
// end-to-end project), running npm ci there when its node_modules is missing.
func sdkProject(t *testing.T) string {
	return testutil.NodeProject(t, filepath.Join("..", "..", "..", "caddymodule", "localstack", "testdata", "node"), "@modelcontextprotocol/sdk")
}

// TestProxyStdioHost runs the built `mcpgate-client proxy URL` under the MCP TypeScript SDK's
// StdioClientTransport (testdata/proxy-host.mjs), as Claude Desktop runs it: the proxy logs in
// through the test browser, relays the host's session, and when the access token has expired
// at the authorization server between two calls it refreshes and the same session goes on.
func TestProxyStdioHost(t *testing.T) {
	sdk := sdkProject(t)
	clientBin, browserBin := buildTools(t)
	var skew atomic.Int64 // the authorization server's clock runs ahead by this much
	as := oauthtest.NewAS(t, oauthtest.ASOptions{
		AccessTTL: time.Hour,
		Now:       func() time.Time { return time.Now().Add(time.Duration(skew.Load())) },
	})
	res := oauthtest.NewResource(t, as, oauthtest.ResourceOptions{})
	browserLog := filepath.Join(t.TempDir(), "browser.log")
	proxyArgs, _ := json.Marshal([]string{"-cache-dir", t.TempDir(), "-open-with", browserBin, "-login-timeout", "30s", "proxy", res.URL})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("testdata", "proxy-host.mjs"))
	cmd.Env = append(os.Environ(), "SDK_PROJECT="+sdk, "PROXY_BIN="+clientBin,
		"PROXY_ARGS="+string(proxyArgs), "TESTBROWSER_LOG="+browserLog)
	var stderr testutil.SyncBuffer // the host's and (inherited) the proxy's
	cmd.Stderr = &stderr
	hostIn, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	hostOut, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(hostOut)
	next := func(v any) {
		t.Helper()
		if !lines.Scan() {
			_ = cmd.Wait()
			t.Fatalf("the host stopped early (%v)\nstderr:\n%s", lines.Err(), stderr.String())
		}
		if err := json.Unmarshal(lines.Bytes(), v); err != nil {
			t.Fatalf("host output %q: %v", lines.Bytes(), err)
		}
	}

	var first struct {
		Step   string   `json:"step"`
		PID    int      `json:"pid"`
		Server string   `json:"server"`
		Tools  []string `json:"tools"`
		Text   string   `json:"text"`
	}
	next(&first)
	slices.Sort(first.Tools)
	if first.Step != "first" || first.PID == 0 || first.Server != "fake" ||
		!slices.Equal(first.Tools, []string{"admin_tool", "echo", "fail", "list_repositories"}) || first.Text != `{"text":"one"}` {
		t.Fatalf("first step: %+v\nstderr:\n%s", first, stderr.String())
	}
	if logged, _ := os.ReadFile(browserLog); strings.TrimSpace(string(logged)) != "200 Login complete - mcpgate" {
		t.Errorf("the test browser saw %q", logged)
	}

	// Expire the access token at the authorization server, then let the host go on.
	skew.Store(int64(2 * time.Hour))
	if _, err := hostIn.Write([]byte("go on\n")); err != nil {
		t.Fatal(err)
	}
	var second struct {
		Step        string `json:"step"`
		PID         int    `json:"pid"`
		Text        string `json:"text"`
		Repos       string `json:"repos"`
		FailIsError bool   `json:"failIsError"`
		FailText    string `json:"failText"`
	}
	next(&second)
	if second.Step != "second" || second.PID != first.PID || second.Text != `{"text":"two"}` ||
		second.Repos != "octo/alpha\nocto/beta" || !second.FailIsError || second.FailText != "it failed" {
		t.Fatalf("second step: %+v (first pid %d)\nstderr:\n%s", second, first.PID, stderr.String())
	}
	var closed struct {
		Step     string  `json:"step"`
		ExitCode *int    `json:"exitCode"`
		Signal   *string `json:"signal"`
	}
	next(&closed)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("host: %v\nstderr:\n%s", err, stderr.String())
	}
	if closed.Step != "closed" || closed.ExitCode == nil || *closed.ExitCode != 0 {
		t.Errorf("the proxy ended with %+v\nstderr:\n%s", closed, stderr.String())
	}

	// One login, then exactly one refresh for the three concurrent calls that met the 401.
	var grants []string
	for _, f := range as.TokenForms() {
		grants = append(grants, f.Get("grant_type"))
	}
	if got := strings.Join(grants, ","); got != "authorization_code,refresh_token" {
		t.Errorf("token grants %s, want one authorization_code then one refresh_token", got)
	}
	if !slices.Contains(res.Statuses(), 401) {
		t.Errorf("the resource never refused the expired token: %v", res.Statuses())
	}
	calls := res.ToolCalls()
	if len(calls) != 4 || calls[0] != "echo" {
		t.Errorf("tool calls %v", calls)
	}
	errText := stderr.String()
	for _, want := range []string{"Logged in at " + as.Issuer, "Refreshing the access token at " + as.Issuer} {
		if !strings.Contains(errText, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errText)
		}
	}
	if strings.Contains(errText, "at-") || strings.Contains(errText, "rt-") || strings.Contains(errText, "Bearer ") {
		t.Errorf("a token on stderr:\n%s", errText)
	}
}
