package mcpbackend

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/mcpgate/mcpbackend/githubfake"
)

func TestToolsHappyPaths(t *testing.T) {
	e := newEnv(t, nil)
	c := connect(t, e.backend.URL+"/mcp", aliceHeaders, "")

	t.Run("get_user_info", func(t *testing.T) {
		res := call(t, c, "get_user_info", nil)
		var u userOut
		structured(t, res, &u)
		if u.Login != "alice" || u.ID != githubfake.AliceID || u.Name != "Alice Example" || u.PublicRepos != 46 {
			t.Errorf("user = %+v", u)
		}
		if !strings.Contains(text(res), "alice") {
			t.Errorf("text %q lacks the login", text(res))
		}
	})

	tests := []struct {
		name      string
		tool      string
		args      map[string]any
		wantCount int
		wantFirst string // first repository full name or issue title
		wantNext  int
		check     func(t *testing.T, raw map[string]any)
	}{
		{name: "repos default page", tool: "list_repositories", args: nil, wantCount: 30, wantFirst: "alice/hello-world", wantNext: 2},
		{name: "repos private only", tool: "list_repositories", args: map[string]any{"visibility": "private"}, wantCount: 1, wantFirst: "alice/secret-plans"},
		{name: "repos page 2 of 10", tool: "list_repositories", args: map[string]any{"per_page": 10, "page": 2}, wantCount: 10, wantFirst: "alice/repo-10", wantNext: 3},
		{name: "repos following Link over 3 pages", tool: "list_repositories", args: map[string]any{"per_page": 10, "pages": 3}, wantCount: 30, wantFirst: "alice/hello-world", wantNext: 4},
		{name: "repos last page", tool: "list_repositories", args: map[string]any{"per_page": 100}, wantCount: 47, wantFirst: "alice/hello-world"},
		{name: "issues open", tool: "list_issues", args: map[string]any{"owner": "alice", "repo": "hello-world"}, wantCount: 3, wantFirst: "Found a bug"},
		{name: "issues closed bug", tool: "list_issues", args: map[string]any{"owner": "alice", "repo": "hello-world", "state": "closed", "labels": "bug"}, wantCount: 1, wantFirst: "Old problem"},
		{name: "issues by label", tool: "list_issues", args: map[string]any{"owner": "alice", "repo": "hello-world", "labels": "documentation"}, wantCount: 1, wantFirst: "Add docs"},
		{name: "search", tool: "search_repositories", args: map[string]any{"query": "hello", "sort": "stars"}, wantCount: 2, wantFirst: "alice/hello-world"},
		{name: "search paginated", tool: "search_repositories", args: map[string]any{"query": "filler", "per_page": 20}, wantCount: 20, wantFirst: "alice/repo-01", wantNext: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := call(t, c, tt.tool, tt.args)
			var out struct {
				Repositories []repoOut  `json:"repositories"`
				Issues       []issueOut `json:"issues"`
				pageSummary
			}
			structured(t, res, &out)
			var first string
			switch {
			case len(out.Repositories) > 0:
				first = out.Repositories[0].FullName
			case len(out.Issues) > 0:
				first = out.Issues[0].Title
			}
			if out.Count != tt.wantCount || len(out.Repositories)+len(out.Issues) != tt.wantCount || first != tt.wantFirst || out.NextPage != tt.wantNext {
				t.Errorf("count %d (items %d), first %q, next %d; want %d, %q, %d", out.Count,
					len(out.Repositories)+len(out.Issues), first, out.NextPage, tt.wantCount, tt.wantFirst, tt.wantNext)
			}
			if text(res) == "" || len(text(res)) > 4000 {
				t.Errorf("text summary has length %d", len(text(res)))
			}
		})
	}

	t.Run("issues mark pull requests and labels", func(t *testing.T) {
		var out issueListOut
		structured(t, call(t, c, "list_issues", map[string]any{"owner": "alice", "repo": "hello-world", "state": "all"}), &out)
		byNum := map[int]issueOut{}
		for _, is := range out.Issues {
			byNum[is.Number] = is
		}
		if !byNum[4].IsPullRequest || byNum[1].IsPullRequest || strings.Join(byNum[2].Labels, ",") != "documentation,good first issue" || byNum[1].Author != "bob" {
			t.Errorf("issues = %+v", out.Issues)
		}
	})

	t.Run("get_repository_info", func(t *testing.T) {
		res := call(t, c, "get_repository_info", map[string]any{"owner": "alice", "repo": "hello-world"})
		var r repoOut
		structured(t, res, &r)
		if r.ID != 5001 || r.FullName != "alice/hello-world" || r.Stars != 42 || r.DefaultBranch != "main" || r.OpenIssues != 3 || r.Language != "Go" {
			t.Errorf("repo = %+v", r)
		}
		if !strings.Contains(text(res), "42 stars") {
			t.Errorf("text = %q", text(res))
		}
	})

	files := []struct {
		name, path, ref string
		wantType        string
		wantContent     string
		wantEntries     string
	}{
		{name: "file", path: "README.md", wantType: "file", wantContent: "# hello-world\n\nA demo repository.\n"},
		{name: "file on ref", path: "main.go", ref: "main", wantType: "file", wantContent: "package main\n\nfunc main() { println(\"hello\") }\n"},
		{name: "file with space escaped per segment", path: "docs/a file.txt", wantType: "file", wantContent: "spaces in names\n"},
		{name: "root directory", path: "", wantType: "dir", wantEntries: "README.md,docs,main.go"},
		{name: "sub directory", path: "docs", wantType: "dir", wantEntries: "a file.txt,deep,guide.md"},
	}
	for _, tt := range files {
		t.Run("get_file_contents "+tt.name, func(t *testing.T) {
			args := map[string]any{"owner": "alice", "repo": "hello-world", "path": tt.path}
			if tt.ref != "" {
				args["ref"] = tt.ref
			}
			var f fileOut
			structured(t, call(t, c, "get_file_contents", args), &f)
			var names []string
			for _, en := range f.Entries {
				names = append(names, en.Name)
			}
			if f.Type != tt.wantType || f.Content != tt.wantContent || strings.Join(names, ",") != tt.wantEntries {
				t.Errorf("got %+v", f)
			}
		})
	}
}

func TestFileContentsCapAndBinary(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxFileBytes = 10 })
	e.fake.AddRepo(githubfake.Repo{ID: 9, Owner: "alice", Name: "blobs", Files: map[string]string{
		"big.txt": strings.Repeat("0123456789", 100), "bin.dat": "\x00\x01\x02\xff", "utf.txt": "ééééééé",
	}})
	c := connect(t, e.backend.URL+"/mcp", aliceHeaders, "")
	tests := []struct {
		path, wantEnc, wantContent string
		wantTrunc                  bool
	}{
		{"big.txt", "utf-8", "0123456789", true},
		{"bin.dat", "base64", "AAEC/w==", false},
		{"utf.txt", "utf-8", "ééééé", true}, // 10 bytes = 5 runes, never a split rune
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			var f fileOut
			structured(t, call(t, c, "get_file_contents", map[string]any{"owner": "alice", "repo": "blobs", "path": tt.path}), &f)
			if f.Encoding != tt.wantEnc || f.Content != tt.wantContent || f.Truncated != tt.wantTrunc {
				t.Errorf("got %+v", f)
			}
		})
	}
}

func TestBadInputIsToolError(t *testing.T) {
	e := newEnv(t, nil)
	c := connect(t, e.backend.URL+"/mcp", aliceHeaders, "")
	tests := []struct {
		name string
		tool string
		args map[string]any
		want []string
	}{
		{"owner with slash", "get_repository_info", map[string]any{"owner": "alice/evil", "repo": "x"}, []string{"owner", `"/"`}},
		{"repo with slash", "get_repository_info", map[string]any{"owner": "alice", "repo": "hello-world/../../user"}, []string{"repo", `"/"`}},
		{"owner dotdot", "list_issues", map[string]any{"owner": "..", "repo": "x"}, []string{"owner", `".."`}},
		{"repo dotdot", "get_file_contents", map[string]any{"owner": "alice", "repo": "a..b"}, []string{"repo", `".."`}},
		{"repo percent", "get_repository_info", map[string]any{"owner": "alice", "repo": "%2e%2e"}, []string{"repo", "only letters"}},
		{"owner missing", "get_repository_info", map[string]any{"repo": "x"}, []string{"owner is required"}},
		{"owner not a string", "get_repository_info", map[string]any{"owner": 5, "repo": "x"}, []string{"owner must be a string"}},
		{"empty query", "search_repositories", map[string]any{"query": ""}, []string{"query must not be empty"}},
		{"blank query", "search_repositories", map[string]any{"query": "   "}, []string{"query must not be empty"}},
		{"missing query", "search_repositories", nil, []string{"query must not be empty"}},
		{"long query", "search_repositories", map[string]any{"query": strings.Repeat("a", 257)}, []string{"256"}},
		{"per_page 0", "list_repositories", map[string]any{"per_page": 0}, []string{"per_page must be between 1 and 100"}},
		{"per_page 10000", "search_repositories", map[string]any{"query": "x", "per_page": 10000}, []string{"per_page must be between 1 and 100"}},
		{"per_page fraction", "list_repositories", map[string]any{"per_page": 1.5}, []string{"per_page must be an integer"}},
		{"per_page string", "list_repositories", map[string]any{"per_page": "10"}, []string{"per_page must be an integer"}},
		{"page 0", "list_issues", map[string]any{"owner": "a", "repo": "b", "page": 0}, []string{"page must be between"}},
		{"pages too many", "list_repositories", map[string]any{"pages": 99}, []string{"pages must be between 1 and 5"}},
		{"bad visibility", "list_repositories", map[string]any{"visibility": "secret"}, []string{"visibility must be one of"}},
		{"bad affiliation", "list_repositories", map[string]any{"affiliation": "owner,boss"}, []string{"affiliation"}},
		{"bad state", "list_issues", map[string]any{"owner": "a", "repo": "b", "state": "merged"}, []string{"state must be one of"}},
		{"bad sort", "search_repositories", map[string]any{"query": "x", "sort": "name"}, []string{"sort must be one of"}},
		{"path traversal", "get_file_contents", map[string]any{"owner": "alice", "repo": "hello-world", "path": "docs/../../../user"}, []string{"path", `".."`}},
		{"absolute path", "get_file_contents", map[string]any{"owner": "alice", "repo": "hello-world", "path": "/etc/passwd"}, []string{"leading"}},
		{"empty segment", "get_file_contents", map[string]any{"owner": "alice", "repo": "hello-world", "path": "docs//guide.md"}, []string{"empty"}},
		{"bad ref", "get_file_contents", map[string]any{"owner": "alice", "repo": "hello-world", "ref": "main..evil"}, []string{"ref"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.fake.Requests())
			wantToolError(t, call(t, c, tt.tool, tt.args), tt.want...)
			if n := len(e.fake.Requests()) - before; n != 0 {
				t.Errorf("bad input reached GitHub (%d requests)", n)
			}
		})
	}
	t.Run("arguments not an object", func(t *testing.T) {
		req := mcp.CallToolRequest{}
		req.Params.Name = "get_user_info"
		req.Params.Arguments = []any{1, 2}
		res, err := c.CallTool(context.Background(), req)
		if err != nil {
			t.Fatalf("protocol error: %v", err)
		}
		wantToolError(t, res, "arguments must be a JSON object")
	})
	// The server is still serving.
	var u userOut
	structured(t, call(t, c, "get_user_info", nil), &u)
}

func TestGitHubFailuresAreToolErrors(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	reset := now.Add(12*time.Minute + 30*time.Second)
	e := newEnv(t, func(o *Options) { o.Now = func() time.Time { return now } })
	c := connect(t, e.backend.URL+"/mcp", aliceHeaders, "")
	rateHdr := http.Header{"X-RateLimit-Remaining": {"0"}, "X-RateLimit-Reset": {strconv.FormatInt(reset.Unix(), 10)}}
	tests := []struct {
		name  string
		fault githubfake.Fault
		want  []string
	}{
		{"401", githubfake.Fault{Status: 401, Body: `{"message":"Bad credentials"}`}, []string{"GitHub rejected the token", "401"}},
		{"403 rate limit", githubfake.Fault{Status: 403, Header: rateHdr, Body: `{"message":"API rate limit exceeded"}`},
			[]string{"rate limit exhausted", "2026-11-28T12:12:30Z", "12m30s"}},
		{"429 rate limit", githubfake.Fault{Status: 429, Header: rateHdr}, []string{"rate limit exhausted", "12:12:30"}},
		{"403 secondary limit", githubfake.Fault{Status: 403, Header: http.Header{"Retry-After": {"60"}}}, []string{"secondary rate limit", "1m0s"}},
		{"403 forbidden", githubfake.Fault{Status: 403, Body: `{"message":"Resource not accessible by integration"}`}, []string{"refused access", "Resource not accessible"}},
		{"404", githubfake.Fault{Status: 404, Body: `{"message":"Not Found"}`}, []string{"not found", "404"}},
		{"422", githubfake.Fault{Status: 422, Body: `{"message":"Validation Failed"}`}, []string{"rejected the request", "422"}},
		{"500", githubfake.Fault{Status: 500, Body: `oops`}, []string{"server error", "500"}},
		{"502 html", githubfake.Fault{Status: 502, Header: http.Header{"Content-Type": {"text/html"}}, Body: `<html>bad gateway</html>`}, []string{"server error", "502"}},
		{"malformed JSON", githubfake.Fault{Status: 200, Body: `{"login": "alice", `}, []string{"malformed", "invalid JSON"}},
		{"wrong JSON shape", githubfake.Fault{Status: 200, Body: `[1,2,3]`}, []string{"malformed"}},
		{"message echoing the token is redacted", githubfake.Fault{Status: 401, Body: `{"message":"bad token ` + githubfake.AliceToken + `"}`}, []string{"[redacted]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.fake.FailNext(tt.fault)
			res := call(t, c, "get_user_info", nil)
			wantToolError(t, res, tt.want...)
			if strings.Contains(text(res), githubfake.AliceToken) {
				t.Errorf("the token leaked into the tool error: %s", text(res))
			}
			// The next call succeeds: the server keeps serving.
			var u userOut
			structured(t, call(t, c, "get_user_info", nil), &u)
		})
	}

	t.Run("not found repository from the fake itself", func(t *testing.T) {
		wantToolError(t, call(t, c, "get_repository_info", map[string]any{"owner": "bob", "repo": "nope"}), "not found")
		wantToolError(t, call(t, c, "get_file_contents", map[string]any{"owner": "alice", "repo": "hello-world", "path": "x", "ref": "nope"}), "not found")
	})
	t.Run("search validation from the fake", func(t *testing.T) {
		// Only qualifiers: passes our check, GitHub's 422 comes back as a tool error.
		e.fake.FailNext(githubfake.Fault{Status: 422, Body: `{"message":"Validation Failed"}`})
		wantToolError(t, call(t, c, "search_repositories", map[string]any{"query": "language:go"}), "422")
	})
	t.Run("fault on the second page of a paginated call", func(t *testing.T) {
		e.fake.Reset()
		e.fake.FailNext(githubfake.Fault{Status: 200, Header: http.Header{"Link": {`<` + e.github.URL + `/user/repos?page=2&per_page=5>; rel="next"`}}, Body: `[]`},
			githubfake.Fault{Status: 500})
		wantToolError(t, call(t, c, "list_repositories", map[string]any{"per_page": 5, "pages": 3}), "500")
		if n := len(e.fake.Requests()); n != 2 {
			t.Errorf("GitHub saw %d requests, want 2", n)
		}
	})
}

func TestGitHubTimeoutIsToolError(t *testing.T) {
	tests := []struct {
		name string
		edit func(o *Options)
		want string
	}{
		{"http client timeout", func(o *Options) { o.HTTPClient.Timeout = 200 * time.Millisecond }, "did not answer within 200ms"},
		{"per-call timeout", func(o *Options) { o.Timeout = 300 * time.Millisecond }, "did not answer within 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) {
				o.HTTPClient = &http.Client{}
				tt.edit(o)
			})
			c := connect(t, e.backend.URL+"/mcp", aliceHeaders, "")
			e.fake.FailNext(githubfake.Fault{Delay: 5 * time.Second, Status: 200, Body: `{}`})
			start := time.Now()
			wantToolError(t, call(t, c, "get_user_info", nil), tt.want)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("the timeout took %v", d)
			}
			var u userOut
			structured(t, call(t, c, "get_user_info", nil), &u)
		})
	}
}

// FuzzArgumentChecks: an accepted owner, repo or path can never climb out of its URL position.
func FuzzArgumentChecks(f *testing.F) {
	for _, s := range []string{"alice", "a/b", "..", "a..b", "%2e%2e", "docs/../x", "/etc", "a b", "ü", ".", "x/./y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if name, err := (args{"owner": s}).name("owner"); err == nil {
			if name == "" || strings.ContainsAny(name, "/%?#\\ ") || strings.Contains(name, "..") || endpoint(name) != "/"+name {
				t.Fatalf("accepted owner %q", s)
			}
		}
		if checkRepoPath(s) == nil && s != "" {
			for _, seg := range strings.Split(strings.TrimSuffix(s, "/"), "/") {
				if seg == "" || seg == "." || seg == ".." {
					t.Fatalf("accepted path %q", s)
				}
			}
			if strings.HasPrefix(s, "/") || strings.Contains(filePath(s), "?") || strings.Contains(filePath(s), "#") {
				t.Fatalf("path %q escapes badly: %q", s, filePath(s))
			}
		}
	})
}

// TestListSummaryText pins the readable line beside each list result (built by listText for all
// three list tools): the count, where more can be found, and the first items.
func TestListSummaryText(t *testing.T) {
	e := newEnv(t, nil)
	c := connect(t, e.backend.URL+"/mcp", aliceHeaders, "")
	tests := []struct {
		tool string
		args map[string]any
		want string
	}{
		{"list_repositories", map[string]any{"per_page": 2}, "2 repositories (more from page 2): alice/hello-world, alice/repo-01"},
		{"list_repositories", map[string]any{"visibility": "private"}, "1 repositories: alice/secret-plans"},
		{"list_issues", map[string]any{"owner": "alice", "repo": "hello-world", "per_page": 1},
			"1 open issues in alice/hello-world (more from page 2): #1 Found a bug"},
		{"list_issues", map[string]any{"owner": "alice", "repo": "hello-world", "state": "closed"},
			"1 closed issues in alice/hello-world: #3 Old problem"},
		{"search_repositories", map[string]any{"query": "hello", "sort": "stars"},
			"2 repositories match \"hello\", showing 2: alice/hello-world (42★), bob/tools (3★)"},
		{"search_repositories", map[string]any{"query": "nothing-matches-this"}, "0 repositories match \"nothing-matches-this\", showing 0: none"},
	}
	for _, tt := range tests {
		t.Run(tt.tool+" "+tt.want, func(t *testing.T) {
			res := call(t, c, tt.tool, tt.args)
			if res.IsError || text(res) != tt.want {
				t.Errorf("text %q (error %v), want %q", text(res), res.IsError, tt.want)
			}
		})
	}
}
