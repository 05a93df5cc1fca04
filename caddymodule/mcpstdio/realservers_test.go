package mcpstdio_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/mcpgate/mcpbackend/githubfake"
)

// Real stdio servers nobody here wrote, and our own mcpbackend, behind mcp_auth + mcp_stdio
// over HTTPS.

func everythingBlock(t *testing.T, extra string) string {
	js := filepath.Join(nodeDir(t), "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")
	if extra != "" {
		extra = "\t\t" + extra + "\n"
	}
	return fmt.Sprintf("mcp_stdio node %s stdio {\n"+
		"\t\tenv GITHUB_PERSONAL_ACCESS_TOKEN {http.request.header.X-GitHub-Token}\n"+
		"\t\tstop_timeout 2s\n%s\t}", js, extra)
}

// childProcs returns the pids of this process's children whose command line contains substr.
func childProcs(t *testing.T, substr string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("no /proc: %v", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Field 4 (ppid) follows the parenthesised command name.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
		f := strings.Fields(rest)
		if len(f) < 2 || f[0] == "Z" || f[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Contains(string(cmdline), substr) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// server-everything's get-env shows each user only their own token, with alice and bob
// calling at the same time (alice as a 2026-07-28 stateless client, bob with the 2025-06-18
// handshake); one user's 100 concurrent echo calls all come back right; no process outlives
// Caddy.
func TestE2EEverythingUsersIsolated(t *testing.T) {
	tokens := map[string]string{"alice": "gho_alice_e2e_0123456789", "bob": "gho_bob_e2e_9876543210"}
	s := newStack(t, tokens)
	s.load(everythingBlock(t, "max_processes 4"))
	ctx := withTimeout(t, 2*time.Minute)
	clients := map[string]*clientT{
		"alice": {c: s.mcpClient(ctx, "alice", "")},
		"bob":   {c: s.mcpClient(ctx, "bob", "2025-06-18")},
	}
	var wg sync.WaitGroup
	for user, ct := range clients {
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var env map[string]string
				out := callText(ctx, t, ct.c, "get-env", nil)
				if err := json.Unmarshal([]byte(out), &env); err != nil {
					t.Errorf("%s: get-env output: %v", user, err)
					return
				}
				if env["GITHUB_PERSONAL_ACCESS_TOKEN"] != tokens[user] {
					t.Errorf("%s sees token %q", user, env["GITHUB_PERSONAL_ACCESS_TOKEN"])
				}
				for other, tok := range tokens {
					if other != user && strings.Contains(out, tok) {
						t.Errorf("%s's process environment holds %s's token", user, other)
					}
				}
				if _, ok := env["MCPSTDIO_FAKE_SERVER"]; ok || env["GOFLAGS"] != "" {
					t.Errorf("%s's process inherited more of Caddy's environment than pass_env", user)
				}
			}()
		}
	}
	wg.Wait()
	if pids := childProcs(t, "server-everything"); len(pids) != 2 {
		t.Errorf("server-everything processes: %v, want one per user", pids)
	}

	// 100 concurrent calls of one user through the gateway: every answer is its own.
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := fmt.Sprintf("message %d", i)
			if out := callText(ctx, t, clients["alice"].c, "echo", map[string]any{"message": msg}); !strings.HasSuffix(out, msg) {
				t.Errorf("call %d got %q", i, out)
			}
		}()
	}
	wg.Wait()
	if pids := childProcs(t, "server-everything"); len(pids) != 2 {
		t.Errorf("server-everything processes after the flood: %v", pids)
	}

	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	if pids := childProcs(t, "server-everything"); len(pids) != 0 {
		t.Errorf("processes left after Caddy stopped: %v", pids)
	}
	// The processes' stderr is in the log, with the user id; the tokens are not.
	logs := s.assertLogsClean(tokens["alice"], tokens["bob"])
	// The user is the default user_key: the issuer and the sub.
	if !strings.Contains(logs, `"user_id":"`+s.issuer.URL+`|alice"`) || !strings.Contains(logs, "Starting default (STDIO) server") {
		t.Error("server-everything's stderr is not in Caddy's log with the user id")
	}
}

type clientT struct{ c *client.Client }

// server-everything's notifications: progress of a long-running call streams back on the
// call's SSE response with the client's own progress token; a logging notification reaches
// the client's GET stream; a long call the client cancels returns at once and the session
// goes on working.
func TestE2EEverythingNotificationsAndCancel(t *testing.T) {
	s := newStack(t, map[string]string{"bob": "gho_bob_e2e_9876543210"})
	s.load(everythingBlock(t, ""))
	ctx := withTimeout(t, 2*time.Minute)
	c := s.mcpClient(ctx, "bob", "2025-06-18", transport.WithContinuousListening())
	var mu sync.Mutex
	var progress []mcp.JSONRPCNotification
	logged := make(chan string, 16)
	firstProgress := make(chan struct{}, 64)
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		switch n.Method {
		case "notifications/progress":
			mu.Lock()
			progress = append(progress, n)
			mu.Unlock()
			firstProgress <- struct{}{}
		case "notifications/message":
			b, _ := json.Marshal(n.Params)
			logged <- string(b)
		}
	})

	req := mcp.CallToolRequest{}
	req.Params.Name = "trigger-long-running-operation"
	req.Params.Arguments = map[string]any{"duration": 0.3, "steps": 3}
	req.Params.Meta = &mcp.Meta{ProgressToken: "bob-progress-1"}
	res, err := c.CallTool(ctx, req)
	if err != nil || res.IsError {
		t.Fatalf("long-running operation: %v %+v", err, res)
	}
	mu.Lock()
	if len(progress) != 3 {
		t.Errorf("%d progress notifications, want 3", len(progress))
	}
	for _, n := range progress {
		if tok := n.Params.AdditionalFields["progressToken"]; tok != "bob-progress-1" {
			t.Errorf("progress token %v, want the client's own", tok)
		}
	}
	mu.Unlock()

	// Logging: toggling simulated logging sends a message now and every 5 s.
	callText(ctx, t, c, "toggle-simulated-logging", nil)
	select {
	case m := <-logged:
		if !strings.Contains(m, "message") {
			t.Errorf("log notification %s", m)
		}
	case <-time.After(30 * time.Second):
		t.Error("no logging notification on the GET stream")
	}
	callText(ctx, t, c, "toggle-simulated-logging", nil)

	// Cancel a long call after its first progress notification.
	for len(firstProgress) > 0 {
		<-firstProgress
	}
	callCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		req := mcp.CallToolRequest{}
		req.Params.Name = "trigger-long-running-operation"
		req.Params.Arguments = map[string]any{"duration": 60, "steps": 60}
		req.Params.Meta = &mcp.Meta{ProgressToken: "bob-progress-2"}
		_, err := c.CallTool(callCtx, req)
		done <- err
	}()
	select {
	case <-firstProgress:
	case <-time.After(30 * time.Second):
		t.Fatal("no progress from the long call")
	}
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("the cancelled call returned a result")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the cancelled call hangs")
	}
	if out := callText(ctx, t, c, "echo", map[string]any{"message": "still here"}); !strings.Contains(out, "still here") {
		t.Errorf("after the cancel: %q", out)
	}
}

// mcpbackendBinary builds mcpbackend into the test's temporary directory.
func mcpbackendBinary(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "mcpbackend")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/mcpgate/mcpgate/mcpbackend/cmd/mcpbackend")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build mcpbackend: %v\n%s", err, out)
	}
	return bin
}

// mcpbackend -transport stdio behind mcp_stdio: each user's GitHub token is in their own
// process's environment, and the fake GitHub sees each user call as that user.
func TestE2EMcpbackendStdio(t *testing.T) {
	bin := mcpbackendBinary(t)
	gh := githubfake.NewDemo()
	ghSrv := httptest.NewServer(gh)
	defer ghSrv.Close()
	s := newStack(t, map[string]string{"alice": githubfake.AliceToken, "bob": githubfake.BobToken})
	// An absolute command path goes in the block: as the directive's first argument, a
	// token starting with "/" would be read as a path matcher.
	s.load(fmt.Sprintf(`mcp_stdio {
		command %s -transport stdio -github-api-url %s
		env GITHUB_ACCESS_TOKEN {http.request.header.X-GitHub-Token}
	}`, bin, ghSrv.URL))
	ctx := withTimeout(t, time.Minute)
	for user, login := range map[string]string{"alice": githubfake.AliceLogin, "bob": githubfake.BobLogin} {
		c := s.mcpClient(ctx, user, "")
		if out := callText(ctx, t, c, "get_user_info", nil); !strings.Contains(out, login) {
			t.Errorf("%s: get_user_info says %q", user, out)
		}
	}
	var sawAlice, sawBob bool
	for _, tok := range gh.Tokens() {
		switch tok {
		case githubfake.AliceToken:
			sawAlice = true
		case githubfake.BobToken:
			sawBob = true
		default:
			t.Errorf("GitHub got an unexpected token")
		}
	}
	if !sawAlice || !sawBob {
		t.Errorf("GitHub saw alice %v, bob %v", sawAlice, sawBob)
	}
	s.assertLogsClean(githubfake.AliceToken, githubfake.BobToken)
}

// @modelcontextprotocol/server-github starts behind mcp_stdio and lists its tools (its calls
// would need api.github.com).
func TestE2EServerGitHubListsTools(t *testing.T) {
	js := filepath.Join(nodeDir(t), "node_modules", "@modelcontextprotocol", "server-github", "dist", "index.js")
	s := newStack(t, map[string]string{"alice": "gho_alice_e2e_0123456789"})
	s.load(fmt.Sprintf(`mcp_stdio node %s {
		env GITHUB_PERSONAL_ACCESS_TOKEN {http.request.header.X-GitHub-Token}
	}`, js))
	ctx := withTimeout(t, time.Minute)
	c := s.mcpClient(ctx, "alice", "2025-11-25")
	res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tool := range res.Tools {
		names[tool.Name] = true
	}
	for _, want := range []string{"search_repositories", "get_file_contents", "create_issue"} {
		if !names[want] {
			t.Errorf("tool %s missing from %d tools", want, len(res.Tools))
		}
	}
}

// sampler answers sampling requests with a fixed text naming its user.
type sampler struct{ user string }

func (sp sampler) CreateMessage(_ context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	return &mcp.CreateMessageResult{
		SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant, Content: mcp.NewTextContent("sampled for " + sp.user)},
		Model:           "test-model", StopReason: "endTurn",
	}, nil
}

// A server-to-client request: server-everything's sampling tool asks the client for an LLM
// completion mid-call; the request reaches mcp-go's sampling handler on the call's event
// stream and the answer goes back to the process.
func TestE2EEverythingSamplingRelayed(t *testing.T) {
	s := newStack(t, map[string]string{"alice": "gho_alice_e2e_0123456789"})
	s.load(everythingBlock(t, "client_capabilities sampling"))
	ctx := withTimeout(t, time.Minute)
	c := s.mcpClientWith(ctx, "alice", "2025-06-18", []client.ClientOption{client.WithSamplingHandler(sampler{user: "alice"})})
	out := callText(ctx, t, c, "trigger-sampling-request", map[string]any{"prompt": "hello", "maxTokens": 5})
	if !strings.Contains(out, "sampled for alice") {
		t.Errorf("sampling result: %q", out)
	}
}

// A user's server-everything process killed mid-call: the call ends with an error, not a
// hang; the next call gets a new process; the count is back to one.
func TestE2EEverythingKilledMidCall(t *testing.T) {
	s := newStack(t, map[string]string{"alice": "gho_alice_e2e_0123456789"})
	s.load(everythingBlock(t, ""))
	ctx := withTimeout(t, time.Minute)
	c := s.mcpClient(ctx, "alice", "2025-11-25")
	callText(ctx, t, c, "echo", map[string]any{"message": "warm up"})
	pids := childProcs(t, "server-everything")
	if len(pids) != 1 {
		t.Fatalf("processes: %v", pids)
	}
	progressed := make(chan struct{}, 64)
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/progress" {
			progressed <- struct{}{}
		}
	})
	done := make(chan error, 1)
	go func() {
		req := mcp.CallToolRequest{}
		req.Params.Name = "trigger-long-running-operation"
		req.Params.Arguments = map[string]any{"duration": 60, "steps": 60}
		req.Params.Meta = &mcp.Meta{ProgressToken: "p"}
		res, err := c.CallTool(ctx, req)
		if err == nil && !res.IsError {
			err = fmt.Errorf("a result from a killed process")
		} else {
			err = nil
		}
		done <- err
	}()
	select {
	case <-progressed: // the call is running in the process
	case <-time.After(30 * time.Second):
		t.Fatal("the long call never started")
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the call to the killed process hangs")
	}
	if out := callText(ctx, t, c, "echo", map[string]any{"message": "again"}); !strings.Contains(out, "again") {
		t.Errorf("after the kill: %q", out)
	}
	if now := childProcs(t, "server-everything"); len(now) != 1 || now[0] == pids[0] {
		t.Errorf("processes after the kill: %v (killed %d)", now, pids[0])
	}
}

// A config reload ends the old config's processes (Cleanup) before the new config serves; the
// next request starts a process under the new config.
func TestE2EReloadEndsProcesses(t *testing.T) {
	s := newStack(t, map[string]string{"alice": "gho_alice_e2e_0123456789"})
	s.load(everythingBlock(t, ""))
	ctx := withTimeout(t, time.Minute)
	c := s.mcpClient(ctx, "alice", "")
	callText(ctx, t, c, "echo", map[string]any{"message": "before"})
	before := childProcs(t, "server-everything")
	if len(before) != 1 {
		t.Fatalf("processes before the reload: %v", before)
	}
	s.load(everythingBlock(t, "idle_timeout 1m"))
	for _, pid := range before {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d of the old config still runs after the reload", pid)
		}
	}
	c = s.mcpClient(ctx, "alice", "")
	if out := callText(ctx, t, c, "echo", map[string]any{"message": "after"}); !strings.Contains(out, "after") {
		t.Errorf("after the reload: %q", out)
	}
	if after := childProcs(t, "server-everything"); len(after) != 1 || after[0] == before[0] {
		t.Errorf("processes after the reload: %v", after)
	}
}
