package mcpbackend

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// This file defines the MCP tools: schemas, argument validation, GitHub calls and result shaping.
// Every failure a user or model can cause or fix is a tool result with isError set, never a
// protocol error.

// readOnly are the annotations shared by all tools: they only read, from the open world (GitHub).
func readOnly(title string) []mcp.ToolOption {
	return []mcp.ToolOption{
		mcp.WithTitleAnnotation(title),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(true),
	}
}

func tool(name, title, desc string, opts ...mcp.ToolOption) mcp.Tool {
	all := append([]mcp.ToolOption{mcp.WithDescription(desc)}, readOnly(title)...)
	return mcp.NewTool(name, append(all, opts...)...)
}

func ownerRepoParams() []mcp.ToolOption {
	return []mcp.ToolOption{
		mcp.WithString("owner", mcp.Required(), mcp.MaxLength(100),
			mcp.Description("Login of the user or organization that owns the repository, e.g. \"octocat\". No \"/\".")),
		mcp.WithString("repo", mcp.Required(), mcp.MaxLength(100),
			mcp.Description("Repository name without the owner, e.g. \"hello-world\". No \"/\".")),
	}
}

func pageParams(maxPages int) []mcp.ToolOption {
	return []mcp.ToolOption{
		mcp.WithInteger("per_page", mcp.Min(1), mcp.Max(100), mcp.DefaultNumber(30),
			mcp.Description("Results per page, 1 to 100. Default 30.")),
		mcp.WithInteger("page", mcp.Min(1), mcp.DefaultNumber(1),
			mcp.Description("Page number to start from, 1-based. Default 1.")),
		mcp.WithInteger("pages", mcp.Min(1), mcp.Max(maxPages), mcp.DefaultNumber(1),
			mcp.Description(fmt.Sprintf("How many consecutive pages to fetch, following GitHub's Link header; 1 to %d. Default 1.", maxPages))),
	}
}

func (b *backend) registerTools(s *server.MCPServer) {
	s.AddTool(tool("get_user_info", "GitHub: who am I",
		"Get the profile of the GitHub user whose account is linked: login, id, name, public repository and follower counts.",
		mcp.WithOutputSchema[userOut]()),
		b.handleGetUserInfo)

	s.AddTool(tool("list_repositories", "GitHub: list my repositories",
		"List repositories the linked GitHub user can access (GET /user/repos).",
		append([]mcp.ToolOption{
			mcp.WithString("visibility", mcp.Enum("all", "public", "private"), mcp.DefaultString("all"),
				mcp.Description("Which repositories by visibility. Default all.")),
			mcp.WithString("affiliation", mcp.DefaultString("owner,collaborator,organization_member"),
				mcp.Description("Comma-separated relationships to include: owner, collaborator, organization_member. Default all three.")),
			mcp.WithString("sort", mcp.Enum("created", "updated", "pushed", "full_name"), mcp.DefaultString("full_name"),
				mcp.Description("Sort order. Default full_name.")),
			mcp.WithOutputSchema[repoListOut](),
		}, pageParams(b.opts.MaxPages)...)...),
		b.handleListRepositories)

	s.AddTool(tool("get_repository_info", "GitHub: repository details",
		"Get details of one repository: description, visibility, default branch, language, stars, forks, open issues, topics.",
		append(ownerRepoParams(), mcp.WithOutputSchema[repoOut]())...),
		b.handleGetRepositoryInfo)

	s.AddTool(tool("list_issues", "GitHub: list issues",
		"List issues of a repository (pull requests are included and marked is_pull_request).",
		append(append(ownerRepoParams(),
			mcp.WithString("state", mcp.Enum("open", "closed", "all"), mcp.DefaultString("open"),
				mcp.Description("Issue state. Default open.")),
			mcp.WithString("labels", mcp.MaxLength(500),
				mcp.Description("Comma-separated label names; only issues with all of them are listed, e.g. \"bug,ui\".")),
			mcp.WithOutputSchema[issueListOut](),
		), pageParams(b.opts.MaxPages)...)...),
		b.handleListIssues)

	s.AddTool(tool("search_repositories", "GitHub: search repositories",
		"Search public repositories and those the user can see, with GitHub's search syntax, e.g. \"mcp language:go stars:>10\".",
		append([]mcp.ToolOption{
			mcp.WithString("query", mcp.Required(), mcp.MinLength(1), mcp.MaxLength(256),
				mcp.Description("Search query in GitHub syntax; not empty, at most 256 characters.")),
			mcp.WithString("sort", mcp.Enum("stars", "forks", "help-wanted-issues", "updated"),
				mcp.Description("Sort field. Default: best match.")),
			mcp.WithOutputSchema[searchOut](),
		}, pageParams(b.opts.MaxPages)...)...),
		b.handleSearchRepositories)

	s.AddTool(tool("get_file_contents", "GitHub: read a file or directory",
		fmt.Sprintf("Get a file's content (text, or base64 for binary files; at most %d bytes, longer files are truncated) "+
			"or a directory's entries.", b.opts.MaxFileBytes),
		append(ownerRepoParams(),
			mcp.WithString("path", mcp.MaxLength(1000),
				mcp.Description("Path inside the repository, e.g. \"docs/README.md\"; empty for the root directory. No leading \"/\" and no \"..\".")),
			mcp.WithString("ref", mcp.MaxLength(250),
				mcp.Description("Branch, tag or commit SHA. Default: the repository's default branch.")),
			mcp.WithOutputSchema[fileOut](),
		)...),
		b.handleGetFileContents)
}

// ---- argument handling ----

// argError is a bad argument; its text is the tool error.
type argError struct{ msg string }

func (e *argError) Error() string { return e.msg }

func badArg(format string, a ...any) error { return &argError{fmt.Sprintf(format, a...)} }

type args map[string]any

func (a args) str(name string) (string, error) {
	v, ok := a[name]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", badArg("%s must be a string", name)
	}
	return s, nil
}

func (a args) integer(name string, def, lo, hi int) (int, error) {
	v, ok := a[name]
	if !ok || v == nil {
		return def, nil
	}
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case int:
		f = float64(n)
	case int64:
		f = float64(n)
	case json.Number:
		x, err := n.Float64()
		if err != nil {
			return 0, badArg("%s must be an integer", name)
		}
		f = x
	default:
		return 0, badArg("%s must be an integer", name)
	}
	if f != math.Trunc(f) || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, badArg("%s must be an integer", name)
	}
	if f < float64(lo) || f > float64(hi) {
		return 0, badArg("%s must be between %d and %d, got %v", name, lo, hi, f)
	}
	return int(f), nil
}

func (a args) enum(name, def string, allowed ...string) (string, error) {
	s, err := a.str(name)
	if err != nil {
		return "", err
	}
	if s == "" {
		return def, nil
	}
	for _, x := range allowed {
		if s == x {
			return s, nil
		}
	}
	return "", badArg("%s must be one of %s, got %q", name, strings.Join(allowed, ", "), truncate(s, 40))
}

// name checks an owner or repository name: GitHub allows letters, digits, '-', '_' and '.'.
// Anything that could change the request path ('/', '..', '%', '?', …) is rejected.
func (a args) name(field string) (string, error) {
	s, err := a.str(field)
	if err != nil {
		return "", err
	}
	switch {
	case s == "":
		return "", badArg("%s is required", field)
	case len(s) > 100:
		return "", badArg("%s is longer than 100 characters", field)
	case strings.Contains(s, "/"):
		return "", badArg("%s %q must be a single name without \"/\" (pass owner and repo separately)", field, truncate(s, 40))
	case strings.Contains(s, ".."):
		return "", badArg("%s %q must not contain \"..\"", field, truncate(s, 40))
	}
	for _, c := range s {
		if !(c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return "", badArg("%s %q may contain only letters, digits, '-', '_' and '.'", field, truncate(s, 40))
		}
	}
	return s, nil
}

func (a args) paging(maxPages int) (perPage, page, pages int, err error) {
	if perPage, err = a.integer("per_page", 30, 1, 100); err != nil {
		return
	}
	if page, err = a.integer("page", 1, 1, 100000); err != nil {
		return
	}
	pages, err = a.integer("pages", 1, 1, maxPages)
	return
}

func pagingQuery(q url.Values, perPage, page int) url.Values {
	q.Set("per_page", strconv.Itoa(perPage))
	q.Set("page", strconv.Itoa(page))
	return q
}

// ---- result shaping ----

// pageSummary describes the pages a list result covers.
type pageSummary struct {
	Count    int `json:"count"`
	Page     int `json:"page"`
	PerPage  int `json:"per_page"`
	NextPage int `json:"next_page,omitempty"`
	LastPage int `json:"last_page,omitempty"`
}

// newPageSummary describes count items from page (perPage each) with the pagination GitHub reported.
func newPageSummary(count, page, perPage int, info pageInfo) pageSummary {
	return pageSummary{Count: count, Page: page, PerPage: perPage, NextPage: info.next, LastPage: info.last}
}

func (p pageSummary) text() string {
	if p.NextPage > 0 {
		return fmt.Sprintf(" (more from page %d)", p.NextPage)
	}
	return ""
}

type userOut struct {
	Login       string `json:"login"`
	ID          int64  `json:"id"`
	Type        string `json:"type,omitempty"`
	Name        string `json:"name,omitempty"`
	Email       string `json:"email,omitempty"`
	Company     string `json:"company,omitempty"`
	Location    string `json:"location,omitempty"`
	Bio         string `json:"bio,omitempty"`
	HTMLURL     string `json:"html_url,omitempty"`
	PublicRepos int    `json:"public_repos"`
	Followers   int    `json:"followers"`
	Following   int    `json:"following"`
	CreatedAt   string `json:"created_at,omitempty"`
}

type ghRepo struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	FullName string `json:"full_name"`
	Owner    struct {
		Login string `json:"login"`
	} `json:"owner"`
	Private       bool     `json:"private"`
	Visibility    string   `json:"visibility"`
	Description   *string  `json:"description"`
	HTMLURL       string   `json:"html_url"`
	DefaultBranch string   `json:"default_branch"`
	Language      *string  `json:"language"`
	Stars         int      `json:"stargazers_count"`
	Forks         int      `json:"forks_count"`
	OpenIssues    int      `json:"open_issues_count"`
	Topics        []string `json:"topics"`
	Archived      bool     `json:"archived"`
	Fork          bool     `json:"fork"`
	UpdatedAt     string   `json:"updated_at"`
	PushedAt      string   `json:"pushed_at"`
}

type repoOut struct {
	ID            int64    `json:"id"`
	FullName      string   `json:"full_name"`
	Owner         string   `json:"owner"`
	Name          string   `json:"name"`
	Private       bool     `json:"private"`
	Visibility    string   `json:"visibility,omitempty"`
	Description   string   `json:"description,omitempty"`
	HTMLURL       string   `json:"html_url,omitempty"`
	DefaultBranch string   `json:"default_branch,omitempty"`
	Language      string   `json:"language,omitempty"`
	Stars         int      `json:"stargazers_count"`
	Forks         int      `json:"forks_count"`
	OpenIssues    int      `json:"open_issues_count"`
	Topics        []string `json:"topics,omitempty"`
	Archived      bool     `json:"archived,omitempty"`
	Fork          bool     `json:"fork,omitempty"`
	UpdatedAt     string   `json:"updated_at,omitempty"`
	PushedAt      string   `json:"pushed_at,omitempty"`
}

func (r ghRepo) out() repoOut {
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	return repoOut{
		ID: r.ID, FullName: r.FullName, Owner: r.Owner.Login, Name: r.Name, Private: r.Private,
		Visibility: r.Visibility, Description: deref(r.Description), HTMLURL: r.HTMLURL,
		DefaultBranch: r.DefaultBranch, Language: deref(r.Language), Stars: r.Stars, Forks: r.Forks,
		OpenIssues: r.OpenIssues, Topics: r.Topics, Archived: r.Archived, Fork: r.Fork,
		UpdatedAt: r.UpdatedAt, PushedAt: r.PushedAt,
	}
}

type repoListOut struct {
	Repositories []repoOut `json:"repositories"`
	pageSummary
}

type searchOut struct {
	TotalCount        int       `json:"total_count"`
	IncompleteResults bool      `json:"incomplete_results"`
	Repositories      []repoOut `json:"repositories"`
	pageSummary
}

type issueOut struct {
	Number        int      `json:"number"`
	Title         string   `json:"title"`
	State         string   `json:"state"`
	Labels        []string `json:"labels"`
	Author        string   `json:"author,omitempty"`
	Comments      int      `json:"comments"`
	IsPullRequest bool     `json:"is_pull_request"`
	HTMLURL       string   `json:"html_url,omitempty"`
	CreatedAt     string   `json:"created_at,omitempty"`
	UpdatedAt     string   `json:"updated_at,omitempty"`
	Body          string   `json:"body,omitempty"`
}

type issueListOut struct {
	Repository string     `json:"repository"`
	Issues     []issueOut `json:"issues"`
	pageSummary
}

type fileOut struct {
	Type      string     `json:"type"` // file, dir, symlink, submodule
	Path      string     `json:"path"`
	Name      string     `json:"name,omitempty"`
	Size      int        `json:"size"`
	SHA       string     `json:"sha,omitempty"`
	HTMLURL   string     `json:"html_url,omitempty"`
	Encoding  string     `json:"encoding,omitempty"` // utf-8 or base64
	Content   string     `json:"content,omitempty"`
	Truncated bool       `json:"truncated,omitempty"`
	Target    string     `json:"target,omitempty"`
	Entries   []entryOut `json:"entries,omitempty"`
}

type entryOut struct {
	Name string `json:"name"`
	Path string `json:"path"`
	Type string `json:"type"`
	Size int    `json:"size"`
}

// ---- handlers ----

// failure turns an error into a tool error result, logging GitHub faults.
func (b *backend) failure(ctx context.Context, toolName string, err error) *mcp.CallToolResult {
	var ge *githubError
	if errors.As(err, &ge) {
		level := slog.LevelInfo
		switch ge.kind {
		case errServer, errTimeout, errNetwork, errMalformed, errTooLarge, errUnknown:
			level = slog.LevelWarn
		}
		b.logger.LogAttrs(ctx, level, "github call failed", slog.String("tool", toolName),
			slog.String("kind", ge.kind.String()), slog.Int("status", ge.status))
	}
	return mcp.NewToolResultError(err.Error())
}

// call runs fn with the request's token, converting every failure into a tool error.
func (b *backend) call(ctx context.Context, req mcp.CallToolRequest,
	fn func(ctx context.Context, token string, a args) (*mcp.CallToolResult, error)) (*mcp.CallToolResult, error) {
	token, source, err := b.tokenFor(ctx)
	if err != nil {
		b.logger.LogAttrs(ctx, slog.LevelDebug, "no usable GitHub token", slog.String("tool", req.Params.Name))
		return mcp.NewToolResultError(err.Error()), nil
	}
	b.logger.LogAttrs(ctx, slog.LevelDebug, "GitHub token selected", slog.String("tool", req.Params.Name),
		slog.String("source", source))
	a, isMap := req.Params.Arguments.(map[string]any)
	if !isMap && req.Params.Arguments != nil {
		return mcp.NewToolResultError("arguments must be a JSON object"), nil
	}
	res, err := fn(ctx, token, args(a))
	if err != nil {
		return b.failure(ctx, req.Params.Name, err), nil
	}
	return res, nil
}

func (b *backend) handleGetUserInfo(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return b.call(ctx, req, func(ctx context.Context, token string, _ args) (*mcp.CallToolResult, error) {
		var u struct {
			userOut
			Name     *string `json:"name"`
			Email    *string `json:"email"`
			Company  *string `json:"company"`
			Location *string `json:"location"`
			Bio      *string `json:"bio"`
		}
		if _, err := b.gh.get(ctx, token, "/user", nil, &u); err != nil {
			return nil, err
		}
		out := u.userOut
		for dst, src := range map[*string]*string{&out.Name: u.Name, &out.Email: u.Email, &out.Company: u.Company,
			&out.Location: u.Location, &out.Bio: u.Bio} {
			if src != nil {
				*dst = *src
			}
		}
		text := fmt.Sprintf("GitHub user %s (id %d)", out.Login, out.ID)
		if out.Name != "" {
			text += ", " + out.Name
		}
		text += fmt.Sprintf(": %d public repositories, %d followers.", out.PublicRepos, out.Followers)
		return mcp.NewToolResultStructured(out, text), nil
	})
}

func (b *backend) handleListRepositories(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return b.call(ctx, req, func(ctx context.Context, token string, a args) (*mcp.CallToolResult, error) {
		visibility, err := a.enum("visibility", "all", "all", "public", "private")
		if err != nil {
			return nil, err
		}
		affiliation, err := a.str("affiliation")
		if err != nil {
			return nil, err
		}
		if affiliation != "" {
			for part := range strings.SplitSeq(affiliation, ",") {
				switch strings.TrimSpace(part) {
				case "owner", "collaborator", "organization_member":
				default:
					return nil, badArg("affiliation must be a comma-separated list of owner, collaborator, organization_member; got %q", truncate(affiliation, 60))
				}
			}
			affiliation = strings.ReplaceAll(affiliation, " ", "")
		}
		sortBy, err := a.enum("sort", "full_name", "created", "updated", "pushed", "full_name")
		if err != nil {
			return nil, err
		}
		perPage, page, pages, err := a.paging(b.opts.MaxPages)
		if err != nil {
			return nil, err
		}
		q := url.Values{"visibility": {visibility}, "sort": {sortBy}}
		if affiliation != "" {
			q.Set("affiliation", affiliation)
		}
		out := repoListOut{Repositories: []repoOut{}}
		info, err := b.gh.getPages(ctx, token, "/user/repos", pagingQuery(q, perPage, page), pages, func(raw json.RawMessage) error {
			var list []ghRepo
			if err := json.Unmarshal(raw, &list); err != nil {
				return errors.New("expected a list of repositories")
			}
			for _, r := range list {
				out.Repositories = append(out.Repositories, r.out())
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		out.pageSummary = newPageSummary(len(out.Repositories), page, perPage, info)
		names := make([]string, 0, len(out.Repositories))
		for _, r := range out.Repositories {
			names = append(names, r.FullName)
		}
		text := fmt.Sprintf("%d repositories%s: %s", out.Count, out.text(), abbreviate(names, 20))
		return mcp.NewToolResultStructured(out, text), nil
	})
}

func (b *backend) handleGetRepositoryInfo(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return b.call(ctx, req, func(ctx context.Context, token string, a args) (*mcp.CallToolResult, error) {
		owner, repo, err := ownerRepo(a)
		if err != nil {
			return nil, err
		}
		var r ghRepo
		if _, err := b.gh.get(ctx, token, endpoint("repos", owner, repo), nil, &r); err != nil {
			return nil, err
		}
		out := r.out()
		vis := "public"
		if out.Private {
			vis = "private"
		}
		text := fmt.Sprintf("%s (%s): %s. Default branch %s, %d stars, %d forks, %d open issues.",
			out.FullName, vis, orNone(out.Description), out.DefaultBranch, out.Stars, out.Forks, out.OpenIssues)
		return mcp.NewToolResultStructured(out, text), nil
	})
}

func (b *backend) handleListIssues(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return b.call(ctx, req, func(ctx context.Context, token string, a args) (*mcp.CallToolResult, error) {
		owner, repo, err := ownerRepo(a)
		if err != nil {
			return nil, err
		}
		state, err := a.enum("state", "open", "open", "closed", "all")
		if err != nil {
			return nil, err
		}
		labels, err := a.str("labels")
		if err != nil {
			return nil, err
		}
		if len(labels) > 500 || strings.ContainsAny(labels, "\r\n\x00") {
			return nil, badArg("labels must be at most 500 characters on one line")
		}
		perPage, page, pages, err := a.paging(b.opts.MaxPages)
		if err != nil {
			return nil, err
		}
		q := url.Values{"state": {state}}
		if labels = strings.TrimSpace(labels); labels != "" {
			q.Set("labels", labels)
		}
		out := issueListOut{Repository: owner + "/" + repo, Issues: []issueOut{}}
		info, err := b.gh.getPages(ctx, token, endpoint("repos", owner, repo, "issues"), pagingQuery(q, perPage, page), pages,
			func(raw json.RawMessage) error {
				var list []struct {
					Number int     `json:"number"`
					Title  string  `json:"title"`
					State  string  `json:"state"`
					Body   *string `json:"body"`
					Labels []struct {
						Name string `json:"name"`
					} `json:"labels"`
					User *struct {
						Login string `json:"login"`
					} `json:"user"`
					Comments    int             `json:"comments"`
					PullRequest json.RawMessage `json:"pull_request"`
					HTMLURL     string          `json:"html_url"`
					CreatedAt   string          `json:"created_at"`
					UpdatedAt   string          `json:"updated_at"`
				}
				if err := json.Unmarshal(raw, &list); err != nil {
					return errors.New("expected a list of issues")
				}
				for _, is := range list {
					o := issueOut{Number: is.Number, Title: is.Title, State: is.State, Labels: []string{},
						Comments: is.Comments, IsPullRequest: len(is.PullRequest) > 0 && string(is.PullRequest) != "null",
						HTMLURL: is.HTMLURL, CreatedAt: is.CreatedAt, UpdatedAt: is.UpdatedAt}
					for _, l := range is.Labels {
						o.Labels = append(o.Labels, l.Name)
					}
					if is.User != nil {
						o.Author = is.User.Login
					}
					if is.Body != nil {
						o.Body = truncate(*is.Body, 2000)
					}
					out.Issues = append(out.Issues, o)
				}
				return nil
			})
		if err != nil {
			return nil, err
		}
		out.pageSummary = newPageSummary(len(out.Issues), page, perPage, info)
		lines := make([]string, 0, len(out.Issues))
		for _, is := range out.Issues {
			lines = append(lines, fmt.Sprintf("#%d %s", is.Number, is.Title))
		}
		text := fmt.Sprintf("%d %s issues in %s%s: %s", out.Count, state, out.Repository, out.text(), abbreviate(lines, 20))
		return mcp.NewToolResultStructured(out, text), nil
	})
}

func (b *backend) handleSearchRepositories(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return b.call(ctx, req, func(ctx context.Context, token string, a args) (*mcp.CallToolResult, error) {
		query, err := a.str("query")
		if err != nil {
			return nil, err
		}
		query = strings.TrimSpace(query)
		switch {
		case query == "":
			return nil, badArg("query must not be empty")
		case len(query) > 256:
			return nil, badArg("query must be at most 256 characters (GitHub's limit)")
		case strings.ContainsAny(query, "\r\n\x00"):
			return nil, badArg("query must be one line")
		}
		sortBy, err := a.enum("sort", "", "stars", "forks", "help-wanted-issues", "updated")
		if err != nil {
			return nil, err
		}
		perPage, page, pages, err := a.paging(b.opts.MaxPages)
		if err != nil {
			return nil, err
		}
		q := url.Values{"q": {query}}
		if sortBy != "" {
			q.Set("sort", sortBy)
		}
		out := searchOut{Repositories: []repoOut{}}
		info, err := b.gh.getPages(ctx, token, "/search/repositories", pagingQuery(q, perPage, page), pages, func(raw json.RawMessage) error {
			var res struct {
				TotalCount        int      `json:"total_count"`
				IncompleteResults bool     `json:"incomplete_results"`
				Items             []ghRepo `json:"items"`
			}
			if err := json.Unmarshal(raw, &res); err != nil {
				return errors.New("expected a search result")
			}
			out.TotalCount, out.IncompleteResults = res.TotalCount, out.IncompleteResults || res.IncompleteResults
			for _, r := range res.Items {
				out.Repositories = append(out.Repositories, r.out())
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		out.pageSummary = newPageSummary(len(out.Repositories), page, perPage, info)
		names := make([]string, 0, len(out.Repositories))
		for _, r := range out.Repositories {
			names = append(names, fmt.Sprintf("%s (%d★)", r.FullName, r.Stars))
		}
		text := fmt.Sprintf("%d repositories match %q, showing %d%s: %s", out.TotalCount, query, out.Count, out.text(), abbreviate(names, 20))
		return mcp.NewToolResultStructured(out, text), nil
	})
}

func (b *backend) handleGetFileContents(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return b.call(ctx, req, func(ctx context.Context, token string, a args) (*mcp.CallToolResult, error) {
		owner, repo, err := ownerRepo(a)
		if err != nil {
			return nil, err
		}
		path, err := a.str("path")
		if err != nil {
			return nil, err
		}
		if err := checkRepoPath(path); err != nil {
			return nil, err
		}
		ref, err := a.str("ref")
		if err != nil {
			return nil, err
		}
		if err := checkRef(ref); err != nil {
			return nil, err
		}
		var q url.Values
		if ref != "" {
			q = url.Values{"ref": {ref}}
		}
		p := endpoint("repos", owner, repo, "contents")
		if path != "" {
			p += "/" + filePath(path)
		}
		var raw json.RawMessage
		if _, err := b.gh.get(ctx, token, p, q, &raw); err != nil {
			return nil, err
		}
		out, err := b.fileResult(raw, path)
		if err != nil {
			return nil, err
		}
		return mcp.NewToolResultStructured(out, fileText(out, owner+"/"+repo)), nil
	})
}

func (b *backend) fileResult(raw json.RawMessage, path string) (fileOut, error) {
	malformed := func(what string) error {
		return &githubError{kind: errMalformed, status: 200, cause: errors.New(what)}
	}
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
		var list []entryOut
		if err := json.Unmarshal(raw, &list); err != nil {
			return fileOut{}, malformed("expected a directory listing")
		}
		if list == nil {
			list = []entryOut{}
		}
		return fileOut{Type: "dir", Path: path, Size: len(list), Entries: list}, nil
	}
	var f struct {
		Type     string `json:"type"`
		Encoding string `json:"encoding"`
		Size     int    `json:"size"`
		Name     string `json:"name"`
		Path     string `json:"path"`
		Content  string `json:"content"`
		SHA      string `json:"sha"`
		Target   string `json:"target"`
		HTMLURL  string `json:"html_url"`
	}
	if err := json.Unmarshal(raw, &f); err != nil || f.Type == "" {
		return fileOut{}, malformed("expected a file or directory")
	}
	out := fileOut{Type: f.Type, Path: f.Path, Name: f.Name, Size: f.Size, SHA: f.SHA, HTMLURL: f.HTMLURL, Target: f.Target}
	if f.Type != "file" {
		return out, nil // symlink or submodule: metadata only
	}
	if f.Encoding != "base64" {
		// GitHub sends encoding "none" and no content for files over 1 MB.
		return fileOut{}, badArg("the file %s is %d bytes, too large for GitHub's contents API; fetch it from %s instead",
			f.Path, f.Size, orNone(f.HTMLURL))
	}
	data, err := base64.StdEncoding.DecodeString(strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, f.Content))
	if err != nil {
		return fileOut{}, malformed("file content is not valid base64")
	}
	if len(data) > b.opts.MaxFileBytes {
		data, out.Truncated = data[:b.opts.MaxFileBytes], true
	}
	if utf8.Valid(data) && !bytes.ContainsRune(data, 0) {
		out.Encoding, out.Content = "utf-8", string(data)
	} else if out.Truncated && utf8.Valid(trimPartialRune(data)) && !bytes.ContainsRune(data, 0) {
		out.Encoding, out.Content = "utf-8", string(trimPartialRune(data))
	} else {
		out.Encoding, out.Content = "base64", base64.StdEncoding.EncodeToString(data)
	}
	return out, nil
}

// trimPartialRune drops an incomplete UTF-8 sequence cut off at the end by truncation.
func trimPartialRune(b []byte) []byte {
	for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
		if utf8.Valid(b) {
			return b
		}
		b = b[:len(b)-1]
	}
	return b
}

func fileText(f fileOut, repo string) string {
	switch f.Type {
	case "dir":
		names := make([]string, 0, len(f.Entries))
		for _, e := range f.Entries {
			n := e.Name
			if e.Type == "dir" {
				n += "/"
			}
			names = append(names, n)
		}
		return fmt.Sprintf("Directory %s/%s: %d entries: %s", repo, f.Path, len(f.Entries), abbreviate(names, 50))
	case "file":
		head := fmt.Sprintf("File %s/%s (%d bytes", repo, f.Path, f.Size)
		if f.Truncated {
			head += ", truncated"
		}
		if f.Encoding == "base64" {
			return head + ", binary; base64 content in the structured result)"
		}
		return head + "):\n" + f.Content
	}
	return fmt.Sprintf("%s/%s is a %s %s", repo, f.Path, f.Type, f.Target)
}

func ownerRepo(a args) (string, string, error) {
	owner, err := a.name("owner")
	if err != nil {
		return "", "", err
	}
	repo, err := a.name("repo")
	if err != nil {
		return "", "", err
	}
	return owner, repo, nil
}

// checkRepoPath accepts "" (the root) or slash-separated segments, none empty, "." or "..".
func checkRepoPath(p string) error {
	if p == "" {
		return nil
	}
	if len(p) > 1000 {
		return badArg("path is longer than 1000 characters")
	}
	if strings.HasPrefix(p, "/") {
		return badArg("path %q must be relative to the repository root (no leading \"/\")", truncate(p, 60))
	}
	if strings.ContainsAny(p, "\\\x00\r\n") {
		return badArg("path %q contains a backslash or control character", truncate(p, 60))
	}
	for seg := range strings.SplitSeq(strings.TrimSuffix(p, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return badArg("path %q must not contain empty, \".\" or \"..\" segments", truncate(p, 60))
		}
	}
	return nil
}

// checkRef accepts what git allows in a ref name, roughly: no "..", spaces, control characters,
// or a leading "-".
func checkRef(r string) error {
	switch {
	case r == "":
		return nil
	case len(r) > 250:
		return badArg("ref is longer than 250 characters")
	case strings.Contains(r, ".."), strings.HasPrefix(r, "-"), strings.ContainsAny(r, " ~^:?*[\\\x7f"):
		return badArg("ref %q is not a valid branch, tag or commit name", truncate(r, 60))
	}
	for _, c := range r {
		if c < ' ' {
			return badArg("ref contains control characters")
		}
	}
	return nil
}

func abbreviate(items []string, n int) string {
	if len(items) == 0 {
		return "none"
	}
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(", … and %d more", len(items)-n)
}

func orNone(s string) string {
	if s == "" {
		return "no description"
	}
	return s
}
