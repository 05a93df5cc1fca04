package mcpauth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	_ "github.com/mcpgate/mcpgate/caddymodule/mcpauth"
	_ "github.com/mcpgate/mcpgate/caddymodule/mcpidp"
	"github.com/mcpgate/mcpgate/internal/testutil"
	"github.com/mcpgate/mcpgate/mcpbackend/githubfake"
)

// toyMCP is a stateless MCP server over streamable HTTP (JSON answers, no
// GET stream) with two tools, read_file and admin_reset. It records the
// tools called.
type toyMCP struct {
	mu     sync.Mutex
	called []string
}

func (m *toyMCP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Name            string `json:"name"`
			ProtocolVersion string `json:"protocolVersion"`
		} `json:"params"`
	}
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	if msg.ID == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	var result any
	switch msg.Method {
	case "initialize":
		result = map[string]any{"protocolVersion": msg.Params.ProtocolVersion,
			"capabilities": map[string]any{"tools": map[string]any{}},
			"serverInfo":   map[string]any{"name": "toy", "version": "1"}}
	case "tools/list":
		schema := map[string]any{"type": "object"}
		result = map[string]any{"tools": []any{
			map[string]any{"name": "read_file", "inputSchema": schema},
			map[string]any{"name": "admin_reset", "inputSchema": schema},
		}}
	case "tools/call":
		m.mu.Lock()
		m.called = append(m.called, msg.Params.Name)
		m.mu.Unlock()
		result = map[string]any{"content": []any{map[string]any{"type": "text", "text": "done: " + msg.Params.Name}}}
	default:
		result = map[string]any{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": result})
}

// TestE2EToolPolicyTypeScriptSDKStepUp: the official MCP TypeScript SDK,
// signed in through the bundled IdP with mcp:tools, sees a tools list
// without admin_reset; calling admin_reset makes the SDK step up (it
// authorizes again with the challenge's scope, and the IdP's consent
// shows the wider scope); the call then passes and the list is whole.
func TestE2EToolPolicyTypeScriptSDKStepUp(t *testing.T) {
	nodeDir := testutil.NodeProject(t, filepath.Join("..", "localstack", "testdata", "node"), "@modelcontextprotocol/sdk")

	gh := httptest.NewServer(githubfake.NewDemo())
	defer gh.Close()
	backend := &toyMCP{}
	bsrv := httptest.NewServer(backend)
	defer bsrv.Close()

	const gw, idp = "http://localhost:19080", "http://localhost:19081"
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`
{
	skip_install_trust
	admin localhost:2999
	http_port 19080
	https_port 19443
	grace_period 1s
}
%[2]s {
	mcp_idp {
		issuer %[2]s
		data_dir %[3]s
		dev_login
		github {
			api_url %[4]s
		}
		exchange_client gateway s3cret-gateway %[1]s/mcp
		default_resource %[1]s/mcp
		scopes mcp:tools mcp:admin
	}
}
%[1]s {
	mcp_auth {
		resource %[1]s/mcp
		issuer %[2]s
		scopes_supported mcp:tools mcp:admin
		required_scopes mcp:tools
		upstream_token token_exchange {
			token_endpoint %[2]s/token
			client_id gateway
			client_secret s3cret-gateway
			audience %[4]s
		}
		upstream_header X-GitHub-Token
		tool_policy {
			allow tools/call admin_* scopes_all mcp:admin
		}
	}
	reverse_proxy %[5]s
}
`, gw, idp, t.TempDir(), gh.URL, strings.TrimPrefix(bsrv.URL, "http://")), "caddyfile")
	if t.Failed() {
		t.FailNow()
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("testdata", "stepup.mjs"))
	cmd.Env = append(os.Environ(), "MCP_URL="+gw+"/mcp", "NODE_DIR="+nodeDir,
		"LOGIN_USER=bob", "LOGIN_GITHUB_TOKEN="+githubfake.BobToken)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("TypeScript SDK client: %v\nstderr:\n%s", err, stderr.String())
	}
	var got struct {
		RequestedScopes []string `json:"requestedScopes"`
		ToolsBefore     []string `json:"toolsBefore"`
		ToolsAfter      []string `json:"toolsAfter"`
		SteppedUp       bool     `json:"steppedUp"`
		IsError         bool     `json:"isError"`
		Text            string   `json:"text"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("SDK client output %q: %v", out, err)
	}
	t.Logf("SDK saw: %+v", got)
	if !slices.Equal(got.ToolsBefore, []string{"read_file"}) {
		t.Errorf("tools before step-up %q, want only read_file", got.ToolsBefore)
	}
	if !got.SteppedUp || len(got.RequestedScopes) != 2 || got.RequestedScopes[0] != "mcp:tools" ||
		got.RequestedScopes[1] != "mcp:admin mcp:tools" {
		t.Errorf("step-up: stepped up %v, scopes requested %q; want mcp:tools, then mcp:admin mcp:tools", got.SteppedUp, got.RequestedScopes)
	}
	if got.IsError || got.Text != "done: admin_reset" {
		t.Errorf("admin_reset after step-up: isError %v, %q", got.IsError, got.Text)
	}
	if !slices.Equal(got.ToolsAfter, []string{"read_file", "admin_reset"}) {
		t.Errorf("tools after step-up %q", got.ToolsAfter)
	}
	backend.mu.Lock()
	defer backend.mu.Unlock()
	if !slices.Equal(backend.called, []string{"admin_reset"}) {
		t.Errorf("the backend ran %q; the call refused before step-up must not reach it", backend.called)
	}
}
