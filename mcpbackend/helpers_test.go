package mcpbackend

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/mcpgate/internal/testutil"
	"github.com/mcpgate/mcpgate/mcpbackend/githubfake"
)

// env is one test setup: a fake GitHub, the backend's HTTP handler in front of it, and the
// backend's captured logs.
type env struct {
	fake    *githubfake.Fake
	github  *httptest.Server
	backend *httptest.Server
	logs    *testutil.SyncBuffer
	opts    Options
}

// newEnv starts the demo fake GitHub and the backend over HTTP; edit adjusts the Options.
func newEnv(t *testing.T, edit func(*Options)) *env {
	t.Helper()
	e := &env{fake: githubfake.NewDemo(), logs: &testutil.SyncBuffer{}}
	e.github = httptest.NewServer(e.fake)
	t.Cleanup(e.github.Close)
	e.opts = Options{
		GitHubAPIURL: e.github.URL,
		HTTPClient:   e.github.Client(),
		Logger:       slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&e.opts)
	}
	h, err := NewHTTPHandler(e.opts)
	if err != nil {
		t.Fatalf("NewHTTPHandler: %v", err)
	}
	e.backend = httptest.NewServer(h)
	t.Cleanup(e.backend.Close)
	t.Cleanup(func() {
		// Every test also checks that no token ever reached the logs.
		for _, tok := range []string{githubfake.AliceToken, githubfake.BobToken, "env-token-secret-value"} {
			if strings.Contains(e.logs.String(), tok) {
				t.Errorf("a token appears in the logs:\n%s", e.logs.String())
			}
		}
	})
	return e
}

// connect returns an initialized MCP client for url sending headers with every request.
// protocol "" lets the client negotiate (the 2026-07-28 stateless core first).
func connect(t *testing.T, url string, headers map[string]string, protocol string, opts ...transport.StreamableHTTPCOption) *client.Client {
	t.Helper()
	opts = append(opts, transport.WithHTTPHeaders(headers))
	c, err := client.NewStreamableHttpClient(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	initialize(t, c, protocol)
	return c
}

func initialize(t *testing.T, c *client.Client, protocol string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = protocol
	req.Params.ClientInfo = mcp.Implementation{Name: "mcpbackend-test", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatalf("initialize: %v", err)
	}
}

// call invokes a tool and fails the test on a protocol error (tool errors are results).
func call(t *testing.T, c *client.Client, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s: protocol error %v (tool failures must be results with isError)", name, err)
	}
	return res
}

func text(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// structured decodes the structured content into out, failing if it is missing or the call failed.
func structured(t *testing.T, res *mcp.CallToolResult, out any) {
	t.Helper()
	if res.IsError {
		t.Fatalf("unexpected tool error: %s", text(res))
	}
	if res.StructuredContent == nil {
		t.Fatalf("no structured content; text: %s", text(res))
	}
	raw, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("structured content %s: %v", raw, err)
	}
}

// wantToolError fails unless res is a tool error whose text contains every fragment.
func wantToolError(t *testing.T, res *mcp.CallToolResult, fragments ...string) {
	t.Helper()
	if !res.IsError {
		t.Fatalf("want a tool error containing %q, got success: %s", fragments, text(res))
	}
	for _, f := range fragments {
		if !strings.Contains(strings.ToLower(text(res)), strings.ToLower(f)) {
			t.Errorf("tool error %q does not contain %q", text(res), f)
		}
	}
}

var aliceHeaders = map[string]string{DefaultTokenHeader: githubfake.AliceToken}

// get performs a raw HTTP request with an optional Host override.
func get(t *testing.T, method, url, host string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func callReq(name string, args map[string]any) mcp.CallToolRequest {
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	return req
}
