package mcpbackend

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/mcpbackend/githubfake"
)

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string // error fragment; "" = valid
	}{
		{"zero value", Options{}, ""},
		{"enterprise URL", Options{GitHubAPIURL: "https://ghe.example.com/api/v3/"}, ""},
		{"relative URL", Options{GitHubAPIURL: "api.github.com"}, "absolute"},
		{"ftp URL", Options{GitHubAPIURL: "ftp://x"}, "absolute"},
		{"URL with credentials", Options{GitHubAPIURL: "https://u:p@api.github.com"}, "credentials"},
		{"URL with query", Options{GitHubAPIURL: "https://api.github.com/?x=1"}, "query"},
		{"bad header name", Options{TokenHeader: "X GitHub"}, "not a valid header"},
		{"Authorization as token header", Options{TokenHeader: "authorization"}, "Authorization"},
		{"path without slash", Options{Path: "mcp"}, "must start with /"},
		{"path clashing with healthz", Options{Path: "/healthz"}, "healthz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewServer(tt.opts)
			_, herr := NewHTTPHandler(tt.opts)
			if tt.want == "" {
				if err != nil || herr != nil {
					t.Fatalf("unexpected errors %v, %v", err, herr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || herr == nil {
				t.Fatalf("error %v (handler: %v), want one containing %q", err, herr, tt.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	o, base, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if base.String() != "https://api.github.com" || o.TokenHeader != "X-GitHub-Token" || o.Path != "/mcp" ||
		o.Timeout != 20*time.Second || o.MaxPages != 5 || o.MaxFileBytes != 256<<10 || o.HTTPClient == nil ||
		o.HTTPClient.Timeout != 30*time.Second || !strings.HasPrefix(o.UserAgent, "mcpgate-mcpbackend/") || o.AllowEnvToken {
		t.Errorf("defaults: %+v", o)
	}
}

// TestToolDefinitions checks what clients see in tools/list: every tool read-only and open-world,
// with described parameters.
func TestToolDefinitions(t *testing.T) {
	e := newEnv(t, nil)
	c := connect(t, e.backend.URL+"/mcp", nil, "2025-06-18")
	res, err := c.ListTools(t.Context(), mcpListTools())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"get_user_info":       nil,
		"list_repositories":   {"visibility", "affiliation", "sort", "per_page", "page", "pages"},
		"get_repository_info": {"owner", "repo"},
		"list_issues":         {"owner", "repo", "state", "labels", "per_page", "page", "pages"},
		"search_repositories": {"query", "sort", "per_page", "page", "pages"},
		"get_file_contents":   {"owner", "repo", "path", "ref"},
	}
	if len(res.Tools) != len(want) {
		t.Errorf("%d tools, want %d", len(res.Tools), len(want))
	}
	for _, tool := range res.Tools {
		params, ok := want[tool.Name]
		if !ok {
			t.Errorf("unexpected tool %s", tool.Name)
			continue
		}
		a := tool.Annotations
		if a.ReadOnlyHint == nil || !*a.ReadOnlyHint || a.OpenWorldHint == nil || !*a.OpenWorldHint ||
			a.DestructiveHint == nil || *a.DestructiveHint || a.Title == "" || tool.Description == "" {
			t.Errorf("%s: annotations %+v, description %q", tool.Name, a, tool.Description)
		}
		if out, _ := json.Marshal(tool.OutputSchema); tool.OutputSchema.Type != "object" || len(tool.OutputSchema.Properties) == 0 {
			t.Errorf("%s: output schema %s", tool.Name, out)
		}
		raw, _ := json.Marshal(tool.InputSchema)
		var schema struct {
			Properties map[string]struct {
				Type        string `json:"type"`
				Description string `json:"description"`
			} `json:"properties"`
		}
		if err := json.Unmarshal(raw, &schema); err != nil {
			t.Fatal(err)
		}
		if len(schema.Properties) != len(params) {
			t.Errorf("%s: properties %v, want %v", tool.Name, schema.Properties, params)
		}
		for _, p := range params {
			if prop, ok := schema.Properties[p]; !ok || prop.Description == "" || prop.Type == "" {
				t.Errorf("%s: parameter %s missing or undescribed", tool.Name, p)
			}
		}
	}
}

// TestLogsNeverContainTokens drives every outcome at debug level and searches the captured logs
// for the tokens (newEnv's cleanup checks the same for every test).
func TestLogsNeverContainTokens(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.AllowEnvToken, o.EnvToken, o.AllowedHosts = true, "env-token-secret-value", []string{"*"}
	})
	alice := connect(t, e.backend.URL+"/mcp", aliceHeaders, "")
	bob := connect(t, e.backend.URL+"/mcp", map[string]string{"X-GitHub-Token": githubfake.BobToken}, "2025-06-18")
	envc := connect(t, e.backend.URL+"/mcp", nil, "")
	malformed := connect(t, e.backend.URL+"/mcp", map[string]string{"X-GitHub-Token": "Bearer " + githubfake.AliceToken}, "")
	e.fake.FailNext(
		githubfake.Fault{Status: 401, Body: `{"message":"token ` + githubfake.AliceToken + ` is bad"}`},
		githubfake.Fault{Status: 500},
		githubfake.Fault{Status: 200, Body: "{"},
	)
	call(t, alice, "get_user_info", nil)
	call(t, alice, "get_user_info", nil)
	call(t, alice, "get_user_info", nil)
	call(t, alice, "list_repositories", map[string]any{"per_page": 5, "pages": 2})
	call(t, bob, "get_repository_info", map[string]any{"owner": "alice", "repo": "secret-plans"})
	// The env token is unknown to the fake: GitHub's 401, and the token was sent, not logged.
	wantToolError(t, call(t, envc, "get_user_info", nil), "rejected the token")
	wantToolError(t, call(t, malformed, "get_user_info", nil), "malformed")
	wantToolError(t, call(t, alice, "search_repositories", map[string]any{"query": ""}), "query")
	logs := e.logs.String()
	if !strings.Contains(logs, "tool call") || !strings.Contains(logs, "github call failed") {
		t.Fatalf("expected debug and failure logs, got:\n%s", logs)
	}
	for _, tok := range []string{githubfake.AliceToken, githubfake.BobToken, "env-token-secret-value"} {
		if strings.Contains(logs, tok) {
			t.Errorf("token %q appears in the logs:\n%s", tok[:8], logs)
		}
	}
}
