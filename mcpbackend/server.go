// Package mcpbackend is the demo MCP server that mcpgate protects: a few read-only GitHub tools
// (get_user_info, list_repositories, get_repository_info, list_issues, search_repositories,
// get_file_contents) that call the GitHub REST API with the signed-in user's GitHub token.
//
// The server has no authentication of its own. Over HTTP it sits behind the mcpgate gateway, which
// verifies the client's OAuth access token and injects the user's GitHub token, either in a
// request header (Options.TokenHeader, default X-GitHub-Token) or as Authorization: Bearer (the
// gateway's upstream_header Authorization); every tool call uses the token of its own request.
// Over stdio (one local user) the token comes from the environment (Options.EnvToken with
// AllowEnvToken). The client's own credential for the gateway, a JWT, is never used and never
// forwarded, even if the gateway passes it on (token.go has the whole rule).
//
// NewServer builds the MCP server; NewHTTPHandler serves it over streamable HTTP together with
// /healthz. The program is in cmd/mcpbackend; package githubfake is a fake GitHub API for tests.
package mcpbackend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Defaults for Options.
const (
	// DefaultGitHubAPIURL is the default Options.GitHubAPIURL: public GitHub.
	DefaultGitHubAPIURL = "https://api.github.com"
	// DefaultTokenHeader is the default Options.TokenHeader, the gateway's default upstream_header.
	DefaultTokenHeader = "X-GitHub-Token"
	// DefaultPath is the default Options.Path of the MCP endpoint.
	DefaultPath = "/mcp"
	// DefaultTimeout is the default Options.Timeout for the GitHub calls of one tool call.
	DefaultTimeout = 20 * time.Second
	// DefaultMaxResponseBytes is the default Options.MaxResponseBytes for one GitHub response: 8 MiB.
	DefaultMaxResponseBytes = 8 << 20
	// DefaultMaxFileBytes is the default Options.MaxFileBytes returned by get_file_contents: 256 KiB.
	DefaultMaxFileBytes = 256 << 10
	// DefaultMaxPages is the default Options.MaxPages followed through Link headers per call.
	DefaultMaxPages = 5
	// DefaultMaxRequestBytes is the default Options.MaxRequestBytes of an MCP request body: 1 MiB.
	DefaultMaxRequestBytes = 1 << 20
	// Version is reported to MCP clients and in the GitHub User-Agent.
	Version = "0.1.0"
)

// Options configures the server. The zero value is usable: it talks to api.github.com and takes
// the token from the X-GitHub-Token header, else from Authorization: Bearer.
type Options struct {
	// GitHubAPIURL is the REST API base URL, without a trailing slash. Default
	// "https://api.github.com"; for GitHub Enterprise Server "https://HOST/api/v3"; tests point it
	// at a fake.
	GitHubAPIURL string
	// HTTPClient makes the GitHub calls. Default: a client with a 30s overall timeout and 10s dial,
	// TLS-handshake and 20s response-header timeouts, that follows redirects (GitHub's 301 for a
	// renamed repository) only within the same scheme and host.
	HTTPClient *http.Client
	// Timeout bounds the GitHub calls of one tool call, pagination included. Default 20s.
	Timeout time.Duration
	// TokenHeader is the request header carrying the user's GitHub token (HTTP only). Default
	// "X-GitHub-Token". A request without it may carry the token as Authorization: Bearer
	// instead; one whose two headers hold different tokens is refused with 400. It cannot be
	// "Authorization" (that is always read, as Bearer).
	TokenHeader string
	// EnvToken is the server's own GitHub token (the program reads GITHUB_ACCESS_TOKEN). Used only
	// when AllowEnvToken is set and the request carries no token (neither the token header nor a
	// usable Authorization: Bearer).
	EnvToken string
	// AllowEnvToken lets requests without a token use EnvToken. The program sets it in stdio
	// mode, and in HTTP mode only with -allow-env-token. Default false: such requests get a "no
	// GitHub account is linked" tool error.
	AllowEnvToken bool
	// Path is the MCP endpoint served by NewHTTPHandler. Default "/mcp".
	Path string
	// AllowedHosts controls which Host headers NewHTTPHandler accepts on requests that arrive over a
	// loopback connection (DNS-rebinding protection; mcp-go's own all-or-nothing check is replaced
	// by this one). Entries are host names or IPs without port, matched case-insensitively; "*"
	// accepts every Host. localhost, 127.0.0.0/8 and ::1 are always accepted. Requests over
	// non-loopback connections are never checked.
	//
	// Default (empty): every Host is accepted unless AllowEnvToken is set, then only loopback
	// Hosts. Reason: behind the gateway (Caddy's reverse_proxy passes the client's Host, e.g.
	// mcp.example.com, to 127.0.0.1) the gateway is the trust boundary, and without an env token the
	// server holds no credential: each request can only use the token it brings, so a
	// DNS-rebinding web page gains nothing. With an env token it would borrow that token, so the
	// check is on.
	AllowedHosts []string
	// MaxRequestBytes bounds the body of one MCP HTTP request; a larger one gets a JSON-RPC parse
	// error. Default 1 MiB.
	MaxRequestBytes int64
	// MaxResponseBytes bounds one GitHub response body. Default 8 MiB.
	MaxResponseBytes int64
	// MaxFileBytes bounds the content get_file_contents returns; longer files are truncated and
	// marked so. Default 256 KiB.
	MaxFileBytes int
	// MaxPages bounds how many pages one list call follows through the Link header. Default 5.
	MaxPages int
	// UserAgent is sent to GitHub. Default "mcpgate-mcpbackend/<Version>".
	UserAgent string
	// Logger receives the server's logs; it never sees a token. Default: discard.
	Logger *slog.Logger
	// Now is the clock (rate-limit reset times). Default time.Now.
	Now func() time.Time
}

// backend holds the resolved options and the GitHub client shared by all tool handlers.
type backend struct {
	opts   Options
	gh     *githubClient
	logger *slog.Logger
}

// withDefaults validates o and fills in defaults.
func (o Options) withDefaults() (Options, *url.URL, error) {
	if o.GitHubAPIURL == "" {
		o.GitHubAPIURL = DefaultGitHubAPIURL
	}
	base, err := url.Parse(strings.TrimRight(o.GitHubAPIURL, "/"))
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" ||
		base.User != nil || base.RawQuery != "" || base.Fragment != "" {
		return o, nil, fmt.Errorf("mcpbackend: GitHub API URL %q must be an absolute http(s) URL without query or credentials", o.GitHubAPIURL)
	}
	if o.TokenHeader == "" {
		o.TokenHeader = DefaultTokenHeader
	}
	if !validHeaderName(o.TokenHeader) {
		return o, nil, fmt.Errorf("mcpbackend: token header %q is not a valid header name", o.TokenHeader)
	}
	if strings.EqualFold(o.TokenHeader, "Authorization") {
		return o, nil, errors.New("mcpbackend: the token header cannot be Authorization: Authorization: Bearer is always " +
			"read as well; the token header names the other header to read (default X-GitHub-Token)")
	}
	if o.Path == "" {
		o.Path = DefaultPath
	}
	if !strings.HasPrefix(o.Path, "/") || o.Path == "/healthz" {
		return o, nil, fmt.Errorf("mcpbackend: path %q must start with / and differ from /healthz", o.Path)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = defaultHTTPClient()
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	if o.MaxPages <= 0 {
		o.MaxPages = DefaultMaxPages
	}
	if o.UserAgent == "" {
		o.UserAgent = "mcpgate-mcpbackend/" + Version
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, base, nil
}

func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 20 * time.Second
	return &http.Client{Transport: t, Timeout: 30 * time.Second, CheckRedirect: sameOriginRedirects}
}

// sameOriginRedirects follows at most 5 redirects and only within the original scheme and host, so
// the token is never sent over plain HTTP or to another host; otherwise the 3xx is returned as is.
func sameOriginRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 || req.URL.Scheme != via[0].URL.Scheme || !strings.EqualFold(req.URL.Host, via[0].URL.Host) {
		return http.ErrUseLastResponse
	}
	return nil
}

func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return s != ""
}

func newBackend(opts Options) (*backend, error) {
	opts, base, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &backend{
		opts:   opts,
		logger: opts.Logger,
		gh: &githubClient{
			base: base, http: opts.HTTPClient, userAgent: opts.UserAgent, timeout: opts.Timeout,
			maxBody: opts.MaxResponseBytes, maxPages: opts.MaxPages, now: opts.Now,
		},
	}, nil
}

// NewServer returns the MCP server with the GitHub tools registered. Serve it over stdio with
// server.NewStdioServer, or over HTTP with NewHTTPHandler (which builds its own). It returns an
// error only for invalid Options.
func NewServer(opts Options) (*server.MCPServer, error) {
	b, err := newBackend(opts)
	if err != nil {
		return nil, err
	}
	return b.mcpServer(), nil
}

func (b *backend) mcpServer() *server.MCPServer {
	s := server.NewMCPServer("mcpgate-github", Version,
		server.WithToolCapabilities(false),
		server.WithRecovery(),
		// The output schemas are generated from the result types; validation keeps them honest.
		server.WithOutputSchemaValidation(),
		server.WithToolHandlerMiddleware(b.logCalls),
		server.WithInstructions("Read-only access to GitHub as the signed-in user: profile, repositories, "+
			"issues, repository search and file contents."),
	)
	b.registerTools(s)
	return s
}

// logCalls logs each tool call at debug level: tool name, duration and outcome. Arguments and
// results are not logged.
func (b *backend) logCalls(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		start := time.Now()
		res, err := next(ctx, req)
		outcome := "ok"
		if err != nil {
			outcome = "protocol_error"
		} else if res != nil && res.IsError {
			outcome = "tool_error"
		}
		b.logger.LogAttrs(ctx, slog.LevelDebug, "tool call", slog.String("tool", req.Params.Name),
			slog.Duration("duration", time.Since(start)), slog.String("outcome", outcome))
		return res, err
	}
}
