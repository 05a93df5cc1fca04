package mcpstdio_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/mcpgate/internal/pyenv"
)

// A Python reference MCP server from PyPI, mcp-server-time, behind mcp_auth + mcp_stdio over
// HTTPS. Its virtual environment (testdata/python/requirements.txt) is built on first use and
// cached; see internal/pyenv.

var (
	timeVenvOnce sync.Once
	timeVenv     pyenv.Venv
	timeVenvErr  error
)

// timeServerPython returns the interpreter of the virtual environment that holds
// mcp-server-time, building it (from PyPI) on first use; the test fails, saying what is
// missing, when python3, its venv module or PyPI is not available.
func timeServerPython(t *testing.T) string {
	t.Helper()
	timeVenvOnce.Do(func() {
		timeVenv, timeVenvErr = pyenv.Ensure("mcp-server-time", filepath.Join("testdata", "python", "requirements.txt"))
		if timeVenvErr == nil && timeVenv.BuildTime != 0 {
			t.Logf("created mcp-server-time's virtual environment %s in %s", timeVenv.Dir, timeVenv.BuildTime.Round(time.Second))
		}
	})
	if timeVenvErr != nil {
		t.Fatalf("mcp-server-time's virtual environment: %v", timeVenvErr)
	}
	return timeVenv.Python
}

// TestTimeServerVirtualEnv checks the environment timeServerPython gives: the mcp-server-time
// that requirements.txt pins, and dependencies that agree with each other (pip check). CI can
// run it before the suite, so that a PyPI failure shows as such.
func TestTimeServerVirtualEnv(t *testing.T) {
	timeServerPython(t)
	if err := timeVenv.Check(filepath.Join("testdata", "python", "requirements.txt"), "mcp-server-time"); err != nil {
		t.Fatal(err)
	}
}

// timeResult is mcp-server-time's answer to get_current_time (its TimeResult model).
type timeResult struct {
	Timezone  string `json:"timezone"`
	Datetime  string `json:"datetime"`
	DayOfWeek string `json:"day_of_week"`
	IsDST     *bool  `json:"is_dst"`
}

// mcp-server-time behind the gateway: alice (a 2026-07-28 stateless client, whose envelope
// mcp_stdio strips for a server of the handshake era) and bob (2025-11-25)
// each get a process of their own, run with the env the config gives
// that user (TZ, through a map on the user id, over the TZ of Caddy's own environment), which
// the server names in its tool descriptions; both call get_current_time at the same time and
// get the current time in UTC; no process outlives Caddy and no token reaches the log.
func TestE2EPythonTimeServer(t *testing.T) {
	python := timeServerPython(t)
	// Caddy's own TZ (passed by default) must lose to the configured one.
	t.Setenv("TZ", "America/Lima")
	tokens := map[string]string{"alice": "gho_alice_e2e_0123456789", "bob": "gho_bob_e2e_9876543210"}
	zones := map[string]string{"alice": "Europe/Berlin", "bob": "Asia/Tokyo"}
	s := newStack(t, tokens)
	// map sits before mcp_auth in Caddy's directive order, but its placeholder is evaluated
	// when mcp_stdio expands env, after mcp_auth set the user id.
	s.load(fmt.Sprintf(`map {http.auth.user.id} {user_tz} {
		alice %s
		bob %s
		default UTC
	}
	mcp_stdio {
		command %s -m mcp_server_time
		env TZ {user_tz}
		env GITHUB_TOKEN {http.request.header.X-GitHub-Token}
		stop_timeout 2s
	}`, zones["alice"], zones["bob"], python))
	ctx := withTimeout(t, time.Minute)
	clients := map[string]*clientT{
		"alice": {c: s.mcpClient(ctx, "alice", "")},
		"bob":   {c: s.mcpClient(ctx, "bob", "2025-11-25")},
	}

	// tools/list: the server's two tools, described with the user's own local timezone.
	for user, ct := range clients {
		res, err := ct.c.ListTools(ctx, mcp.ListToolsRequest{})
		if err != nil {
			t.Fatalf("%s: tools/list: %v", user, err)
		}
		tools := map[string]mcp.Tool{}
		for _, tool := range res.Tools {
			tools[tool.Name] = tool
		}
		if len(tools) != 2 {
			t.Errorf("%s: %d tools, want get_current_time and convert_time", user, len(res.Tools))
		}
		for _, name := range []string{"get_current_time", "convert_time"} {
			tool, ok := tools[name]
			if !ok {
				t.Errorf("%s: tool %s missing", user, name)
				continue
			}
			schema, _ := json.Marshal(tool.InputSchema)
			if !strings.Contains(string(schema), "Use '"+zones[user]+"' as local timezone") {
				t.Errorf("%s: %s's schema does not name the configured TZ %s: %s", user, name, zones[user], schema)
			}
		}
	}

	// Both users call get_current_time at the same time.
	before := time.Now().UTC().Truncate(time.Second)
	start := make(chan struct{})
	var wg sync.WaitGroup
	results := map[string]*timeResult{}
	var mu sync.Mutex
	for user, ct := range clients {
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				out := callText(ctx, t, ct.c, "get_current_time", map[string]any{"timezone": "UTC"})
				var r timeResult
				if err := json.Unmarshal([]byte(out), &r); err != nil {
					t.Errorf("%s call %d: get_current_time said %q: %v", user, i, out, err)
					return
				}
				mu.Lock()
				results[fmt.Sprintf("%s %d", user, i)] = &r
				mu.Unlock()
			}()
		}
	}
	close(start)
	wg.Wait()
	after := time.Now().UTC()
	if len(results) != 6 {
		t.Fatalf("%d answers, want 6", len(results))
	}
	for who, r := range results {
		at, err := time.Parse(time.RFC3339, r.Datetime)
		switch {
		case err != nil:
			t.Errorf("%s: datetime %q: %v", who, r.Datetime, err)
		case r.Timezone != "UTC" || !strings.HasSuffix(r.Datetime, "+00:00"):
			t.Errorf("%s: not UTC: %+v", who, r)
		case at.Before(before) || at.After(after):
			t.Errorf("%s: %s is not the time of the call (between %s and %s)", who, r.Datetime, before, after)
		case r.DayOfWeek != at.Weekday().String():
			t.Errorf("%s: %s is not a %s", who, r.Datetime, r.DayOfWeek)
		case r.IsDST == nil || *r.IsDST:
			t.Errorf("%s: UTC has no daylight saving time: %+v", who, r)
		}
	}

	// A bad argument is a tool error the model can read, not a protocol fault.
	req := mcp.CallToolRequest{}
	req.Params.Name = "get_current_time"
	req.Params.Arguments = map[string]any{"timezone": "Mars/Olympus_Mons"}
	res, err := clients["bob"].c.CallTool(ctx, req)
	if err != nil || !res.IsError {
		t.Errorf("an unknown timezone: %v %+v", err, res)
	}

	if pids := childProcs(t, "mcp_server_time"); len(pids) != 2 {
		t.Errorf("mcp-server-time processes: %v, want one per user", pids)
	}
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	if pids := childProcs(t, "mcp_server_time"); len(pids) != 0 {
		t.Errorf("processes left after Caddy stopped: %v", pids)
	}
	s.assertLogsClean(tokens["alice"], tokens["bob"])
}
