package client

import (
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/mcpgate/client/internal/oauthtest"
	"github.com/mcpgate/mcpgate/internal/testutil"
)

func TestDemo(t *testing.T) {
	e := newEnv(t, oauthtest.ASOptions{}, oauthtest.ResourceOptions{})
	out := &testutil.SyncBuffer{}
	c, _ := e.client(t, func(c *Config) { c.Stdout = out })
	if err := c.Demo(ctxT(t)); err != nil {
		t.Fatalf("Demo: %v", err)
	}
	want := "Ping: ok\nTools (4):\n  admin_tool         Needs mcp:admin.\n  echo               Echoes its arguments as JSON.\n  fail               Always fails.\n  list_repositories  Lists the user's repositories.\nlist_repositories:\nocto/alpha\nocto/beta\n"
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out, want)
	}
	if got := e.res.ToolCalls(); len(got) != 1 || got[0] != "list_repositories" {
		t.Errorf("tool calls %v", got)
	}
}

func TestCallErrors(t *testing.T) {
	e := newEnv(t, oauthtest.ASOptions{}, oauthtest.ResourceOptions{})
	c, _ := e.client(t, nil)
	if _, err := c.Call(ctxT(t), "", nil); err == nil {
		t.Error("empty tool name accepted")
	}
	res, err := c.Call(ctxT(t), "fail", nil)
	if err != nil || !res.IsError || ResultText(res) != "it failed" {
		t.Fatalf("tool error: %+v %v", res, err)
	}
	_, err = c.Call(ctxT(t), "no_such_tool", nil)
	mustContain(t, err, "calling no_such_tool failed")
}

func TestResultText(t *testing.T) {
	res := &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent("a"), mcp.NewImageContent("AAAA", "image/png")}}
	got := ResultText(res)
	if !strings.HasPrefix(got, "a\n{") || !strings.Contains(got, `"mimeType":"image/png"`) {
		t.Errorf("got %q", got)
	}
	res = &mcp.CallToolResult{StructuredContent: map[string]any{"n": 1}}
	if got := ResultText(res); got != "{\n  \"n\": 1\n}" {
		t.Errorf("structured: %q", got)
	}
}
