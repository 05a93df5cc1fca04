package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/mcpgate/internal/testutil"
	"github.com/mcpgate/mcpgate/mcpbackend/githubfake"
)

func TestHelpDocumentsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-h"}, nil, io.Discard, &out, func(string) string { return "" })
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run -h = %v, want flag.ErrHelp", err)
	}
	help := out.String()
	var c config
	n := 0
	newFlagSet(&c, io.Discard).VisitAll(func(f *flag.Flag) {
		n++
		_, usage := flag.UnquoteUsage(f)
		if !strings.Contains(help, "  -"+f.Name) || usage == "" || !strings.Contains(help, strings.SplitN(usage, "\n", 2)[0]) {
			t.Errorf("flag -%s is not documented in -h", f.Name)
		}
	})
	for _, name := range []string{"transport", "listen", "path", "github-api-url", "token-header", "allow-env-token", "allowed-hosts"} {
		if !strings.Contains(help, "  -"+name) {
			t.Errorf("-h lacks the required flag -%s", name)
		}
	}
	for _, s := range []string{"GITHUB_ACCESS_TOKEN", "mcp.example.com", "trust boundary", "405", "/healthz", `default "127.0.0.1:8090"`, `default "http"`, `default "X-GitHub-Token"`, "Authorization: Bearer", "400"} {
		if !strings.Contains(help, s) {
			t.Errorf("-h does not mention %q", s)
		}
	}
	if n < 7 {
		t.Errorf("only %d flags", n)
	}
}

func TestBadCommandLines(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   string
		usage bool
		want  string
	}{
		{"unknown transport", []string{"-transport", "sse"}, "", true, "-transport must be http or stdio"},
		{"unknown flag", []string{"-nope"}, "", true, "flag provided but not defined"},
		{"extra argument", []string{"extra"}, "", true, "unexpected arguments"},
		{"bad log level", []string{"-log-level", "loud"}, "", false, "-log-level"},
		{"env token allowed but unset", []string{"-allow-env-token", "-listen", "127.0.0.1:0"}, "", false, "needs GITHUB_ACCESS_TOKEN"},
		{"bad API URL", []string{"-github-api-url", "api.github.com", "-listen", "127.0.0.1:0"}, "", false, "absolute"},
		{"bad token header", []string{"-token-header", "Authorization", "-listen", "127.0.0.1:0"}, "", false, "Authorization"},
		{"listen failure", []string{"-listen", "256.0.0.1:1"}, "", false, "256.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := run(ctx, tt.args, strings.NewReader(""), io.Discard, &stderr, func(string) string { return tt.env })
			if err == nil {
				t.Fatal("no error")
			}
			if isUsage := errors.As(err, new(usageError)); isUsage != tt.usage {
				t.Errorf("usage error %v, want %v (%v)", isUsage, tt.usage, err)
			}
			if !strings.Contains(err.Error()+stderr.String(), tt.want) {
				t.Errorf("error %v / output %q lack %q", err, stderr.String(), tt.want)
			}
		})
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the program once per test run (the stdio test must run the real program).
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("these tests need the go tool on PATH to build the program: %w", err)
			return
		}
		dir, err := os.MkdirTemp("", "mcpbackend-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "mcpbackend")
		out, err := exec.Command(goTool, "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func startFake(t *testing.T) (*githubfake.Fake, string) {
	f := githubfake.NewDemo()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func initialize(t *testing.T, c *client.Client, start bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if start {
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "main-test", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatalf("initialize: %v", err)
	}
}

func callText(t *testing.T, c *client.Client, name string, args map[string]any) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = name, args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s: protocol error %v", name, err)
	}
	var parts []string
	for _, ct := range res.Content {
		if tc, ok := ct.(mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n"), res.IsError
}

// TestStdioSubprocess runs the built program over stdio, as Claude Code or Claude Desktop would.
func TestStdioSubprocess(t *testing.T) {
	bin := binary(t)
	tests := []struct {
		name      string
		token     string
		wantText  string
		wantError bool
	}{
		{"with GITHUB_ACCESS_TOKEN", githubfake.AliceToken, "GitHub user alice", false},
		{"without a token", "", "no GitHub account is linked", true},
		{"with a wrong token", "ghu_wrong", "GitHub rejected the token", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, apiURL := startFake(t)
			var stderr testutil.SyncBuffer
			c, err := client.NewStdioMCPClientWithOptions(bin, []string{"GITHUB_ACCESS_TOKEN=" + tt.token},
				[]string{"-transport", "stdio", "-github-api-url", apiURL, "-log-level", "debug"},
				transport.WithCommandStderrWriter(&stderr))
			if err != nil {
				t.Fatal(err)
			}
			initialize(t, c, false)
			got, isErr := callText(t, c, "get_user_info", nil)
			if isErr != tt.wantError || !strings.Contains(got, tt.wantText) {
				t.Errorf("get_user_info = %q (error %v)", got, isErr)
			}
			// Bad input is a tool error and the server keeps serving (without a token every tool
			// answers the missing-token error first).
			if tt.token != "" {
				if got, isErr := callText(t, c, "get_repository_info", map[string]any{"owner": "a/b", "repo": "c"}); !isErr || !strings.Contains(got, "/") {
					t.Errorf("bad owner: %q %v", got, isErr)
				}
				if got, isErr := callText(t, c, "search_repositories", map[string]any{"query": "hello", "per_page": 10000}); !isErr || !strings.Contains(got, "per_page") {
					t.Errorf("bad per_page: %q %v", got, isErr)
				}
				if tt.token == githubfake.AliceToken {
					if got, isErr := callText(t, c, "get_file_contents", map[string]any{"owner": "alice", "repo": "hello-world", "path": "README.md"}); isErr || !strings.Contains(got, "A demo repository.") {
						t.Errorf("get_file_contents: %q %v", got, isErr)
					}
				}
			}
			// The program exits by itself, and cleanly, when its stdin closes (no calls in flight).
			if err := c.Close(); err != nil {
				t.Errorf("close: %v (the program did not exit cleanly)", err)
			}
			for _, tok := range fake.Tokens() {
				if tok != tt.token {
					t.Errorf("GitHub received token %q, want only %q", tok, tt.token)
				}
			}
			if tt.token != "" && strings.Contains(stderr.String(), tt.token) {
				t.Errorf("the token appears in the program's log:\n%s", stderr.String())
			}
			if !strings.Contains(stderr.String(), "serving MCP over stdio") {
				t.Errorf("log: %s", stderr.String())
			}
		})
	}
}

// TestHTTPSubprocessAndGracefulShutdown runs the program in http mode, calls a tool through it and
// stops it with SIGTERM.
func TestHTTPSubprocessAndGracefulShutdown(t *testing.T) {
	bin := binary(t)
	fake, apiURL := startFake(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var stderr testutil.SyncBuffer
	cmd := exec.Command(bin, "-listen", addr, "-github-api-url", apiURL, "-path", "/github/mcp")
	cmd.Env = append(os.Environ(), "GITHUB_ACCESS_TOKEN=env-token-must-not-be-used")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no /healthz: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	c, err := client.NewStreamableHttpClient("http://"+addr+"/github/mcp",
		transport.WithHTTPHeaders(map[string]string{"X-GitHub-Token": githubfake.BobToken}))
	if err != nil {
		t.Fatal(err)
	}
	initialize(t, c, true)
	if got, isErr := callText(t, c, "get_user_info", nil); isErr || !strings.Contains(got, "GitHub user bob") {
		t.Errorf("get_user_info = %q", got)
	}
	// The gateway with upstream_header Authorization sends the token as a bearer.
	bc, err := client.NewStreamableHttpClient("http://"+addr+"/github/mcp",
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + githubfake.AliceToken}))
	if err != nil {
		t.Fatal(err)
	}
	initialize(t, bc, true)
	if got, isErr := callText(t, bc, "get_user_info", nil); isErr || !strings.Contains(got, "GitHub user alice") {
		t.Errorf("get_user_info with a bearer = %q", got)
	}
	nc, err := client.NewStreamableHttpClient("http://" + addr + "/github/mcp")
	if err != nil {
		t.Fatal(err)
	}
	initialize(t, nc, true)
	if got, isErr := callText(t, nc, "get_user_info", nil); !isErr || !strings.Contains(got, "no GitHub account is linked") {
		t.Errorf("without header: %q", got)
	}
	_ = c.Close()
	_ = bc.Close()
	_ = nc.Close()
	if toks := fake.Tokens(); len(toks) != 2 || toks[0] != githubfake.BobToken || toks[1] != githubfake.AliceToken {
		t.Errorf("GitHub received %q", toks)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit 10s after SIGTERM\n%s", stderr.String())
	}
	for _, s := range []string{"shutting down", "stopped", "GITHUB_ACCESS_TOKEN is set but ignored"} {
		if !strings.Contains(stderr.String(), s) {
			t.Errorf("log lacks %q:\n%s", s, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "env-token-must-not-be-used") || strings.Contains(stderr.String(), githubfake.BobToken) ||
		strings.Contains(stderr.String(), githubfake.AliceToken) {
		t.Errorf("a token appears in the log:\n%s", stderr.String())
	}
}
