package mcpbackend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// This file defines the MCP tools: their registration (schemas and annotations) and their handlers,
// which validate the arguments (args.go), call GitHub (github.go) and shape the result
// (results.go). Every failure a user or model can cause or fix is a tool result with isError set,
// never a protocol error.

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

// listPages is the paging shared by the list tools. It reads per_page, page and pages from a (after
// the tool's own arguments, so their errors come first), fetches that many pages of path with
// query q, following GitHub's Link header, and returns the summary of the items decode reported.
// decode is called once per page and returns how many items it added.
func (b *backend) listPages(ctx context.Context, token string, a args, path string, q url.Values,
	decode func(raw json.RawMessage) (int, error)) (pageSummary, error) {
	perPage, page, pages, err := a.paging(b.opts.MaxPages)
	if err != nil {
		return pageSummary{}, err
	}
	count := 0
	info, err := b.gh.getPages(ctx, token, path, pagingQuery(q, perPage, page), pages, func(raw json.RawMessage) error {
		n, err := decode(raw)
		count += n
		return err
	})
	if err != nil {
		return pageSummary{}, err
	}
	return newPageSummary(count, page, perPage, info), nil
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
		q := url.Values{"visibility": {visibility}, "sort": {sortBy}}
		if affiliation != "" {
			q.Set("affiliation", affiliation)
		}
		out := repoListOut{Repositories: []repoOut{}}
		out.pageSummary, err = b.listPages(ctx, token, a, "/user/repos", q, func(raw json.RawMessage) (int, error) {
			var list []ghRepo
			if err := json.Unmarshal(raw, &list); err != nil {
				return 0, errors.New("expected a list of repositories")
			}
			for _, r := range list {
				out.Repositories = append(out.Repositories, r.out())
			}
			return len(list), nil
		})
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(out.Repositories))
		for _, r := range out.Repositories {
			names = append(names, r.FullName)
		}
		return mcp.NewToolResultStructured(out, listText(fmt.Sprintf("%d repositories", out.Count), out.pageSummary, names)), nil
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
		q := url.Values{"state": {state}}
		if labels = strings.TrimSpace(labels); labels != "" {
			q.Set("labels", labels)
		}
		out := issueListOut{Repository: owner + "/" + repo, Issues: []issueOut{}}
		out.pageSummary, err = b.listPages(ctx, token, a, endpoint("repos", owner, repo, "issues"), q,
			func(raw json.RawMessage) (int, error) {
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
					return 0, errors.New("expected a list of issues")
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
				return len(list), nil
			})
		if err != nil {
			return nil, err
		}
		lines := make([]string, 0, len(out.Issues))
		for _, is := range out.Issues {
			lines = append(lines, fmt.Sprintf("#%d %s", is.Number, is.Title))
		}
		head := fmt.Sprintf("%d %s issues in %s", out.Count, state, out.Repository)
		return mcp.NewToolResultStructured(out, listText(head, out.pageSummary, lines)), nil
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
		q := url.Values{"q": {query}}
		if sortBy != "" {
			q.Set("sort", sortBy)
		}
		out := searchOut{Repositories: []repoOut{}}
		out.pageSummary, err = b.listPages(ctx, token, a, "/search/repositories", q, func(raw json.RawMessage) (int, error) {
			var res struct {
				TotalCount        int      `json:"total_count"`
				IncompleteResults bool     `json:"incomplete_results"`
				Items             []ghRepo `json:"items"`
			}
			if err := json.Unmarshal(raw, &res); err != nil {
				return 0, errors.New("expected a search result")
			}
			out.TotalCount, out.IncompleteResults = res.TotalCount, out.IncompleteResults || res.IncompleteResults
			for _, r := range res.Items {
				out.Repositories = append(out.Repositories, r.out())
			}
			return len(res.Items), nil
		})
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(out.Repositories))
		for _, r := range out.Repositories {
			names = append(names, fmt.Sprintf("%s (%d★)", r.FullName, r.Stars))
		}
		head := fmt.Sprintf("%d repositories match %q, showing %d", out.TotalCount, query, out.Count)
		return mcp.NewToolResultStructured(out, listText(head, out.pageSummary, names)), nil
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
