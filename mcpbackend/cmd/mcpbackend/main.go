// Command mcpbackend runs the mcpgate demo MCP server: read-only GitHub tools over streamable HTTP
// (behind the mcpgate gateway, which injects each user's GitHub token) or over stdio (one local
// user, token from GITHUB_ACCESS_TOKEN). Run it with -h for the flags; docs/mcpbackend.md has the
// details.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate/mcpbackend"
)

const envToken = "GITHUB_ACCESS_TOKEN"

// shutdownGrace is how long calls in flight may take to finish when the program stops: on
// SIGINT/SIGTERM in both modes, and in stdio mode also when stdin closes.
const shutdownGrace = 15 * time.Second

func main() {
	// A client that closes its end of our stderr (or stdout) must not kill the process while it
	// finishes the calls in flight: writes to fd 1 and 2 then fail with EPIPE instead of raising
	// SIGPIPE. (mcp-go's stdio client closes stdin and stderr together when it is done.)
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, new(usageError)):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "mcpbackend:", err)
		os.Exit(1)
	}
}

// usageError is a bad command line; the flag package has already printed the problem and usage.
type usageError struct{ error }

// config is the parsed command line.
type config struct {
	transport     string
	listen        string
	path          string
	githubAPIURL  string
	tokenHeader   string
	allowEnvToken bool
	allowedHosts  string
	timeout       time.Duration
	logLevel      string
}

// newFlagSet defines every flag, writing into c; its Usage is the -h text.
func newFlagSet(c *config, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("mcpbackend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.transport, "transport", "http",
		"`mode`: \"http\" serves MCP streamable HTTP on -listen (behind the mcpgate gateway);\n"+
			"\"stdio\" speaks MCP on stdin/stdout for one local user, with the token from "+envToken)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8090", "`address` to listen on in http mode")
	fs.StringVar(&c.path, "path", mcpbackend.DefaultPath, "URL `path` of the MCP endpoint in http mode (/healthz is served beside it)")
	fs.StringVar(&c.githubAPIURL, "github-api-url", mcpbackend.DefaultGitHubAPIURL,
		"GitHub REST API base `URL`; for GitHub Enterprise Server https://HOST/api/v3")
	fs.StringVar(&c.tokenHeader, "token-header", mcpbackend.DefaultTokenHeader,
		"request `header` that carries the user's GitHub token in http mode (the gateway's upstream_header);\n"+
			"without it the token is read from \"Authorization: Bearer\" (upstream_header Authorization), and if\n"+
			"both carry different tokens the request gets 400. A request with neither gets a \"no GitHub\n"+
			"account is linked\" tool error, never another user's token. It cannot be Authorization")
	fs.BoolVar(&c.allowEnvToken, "allow-env-token", false,
		"http mode: let requests without a token (header or bearer) use "+envToken+" (one-user setups only;\n"+
			"it also turns on the loopback Host check unless -allowed-hosts says otherwise). Always on in stdio mode")
	fs.StringVar(&c.allowedHosts, "allowed-hosts", "",
		"comma-separated `hosts` accepted in the Host header of requests that arrive on a loopback listener\n"+
			"(DNS-rebinding protection; localhost and loopback IPs are always accepted; \"*\" accepts any).\n"+
			"Default (empty): any Host, because behind Caddy's reverse_proxy the Host is the public name\n"+
			"(e.g. mcp.example.com) and the gateway is the trust boundary, while without an env token a\n"+
			"rebinding page could only use the token it sends itself; with -allow-env-token: loopback only")
	fs.DurationVar(&c.timeout, "timeout", mcpbackend.DefaultTimeout, "time limit for the GitHub calls of one tool call")
	fs.StringVar(&c.logLevel, "log-level", "info", "log `level` on stderr: debug, info, warn or error (tokens are never logged)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: mcpbackend [flags]

The mcpgate demo MCP server: read-only GitHub tools (get_user_info, list_repositories,
get_repository_info, list_issues, search_repositories, get_file_contents).

In http mode it serves POST on -path, default %s (MCP streamable HTTP, stateless;
GET answers 405), and
GET /healthz, and takes each request's GitHub token from what the mcpgate gateway injects:
the -token-header header, else "Authorization: Bearer <token>". A JWT in Authorization
is the client's credential for the gateway; it is never used or forwarded.
In stdio mode the token is the environment variable %s.

Environment:
  %s   GitHub token for stdio mode, and for http mode with -allow-env-token

Flags:
`, mcpbackend.DefaultPath, envToken, envToken)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := newFlagSet(&c, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, usageError{err}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %q\n", fs.Args())
		fs.Usage()
		return c, usageError{errors.New("unexpected arguments")}
	}
	if c.transport != "http" && c.transport != "stdio" {
		fmt.Fprintf(stderr, "-transport must be http or stdio, got %q\n", c.transport)
		fs.Usage()
		return c, usageError{errors.New("bad -transport")}
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts := mcpbackend.Options{
		GitHubAPIURL:  c.githubAPIURL,
		TokenHeader:   c.tokenHeader,
		EnvToken:      strings.TrimSpace(getenv(envToken)),
		AllowEnvToken: c.allowEnvToken || c.transport == "stdio",
		Path:          c.path,
		Timeout:       c.timeout,
		Logger:        logger,
	}
	for h := range strings.SplitSeq(c.allowedHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			opts.AllowedHosts = append(opts.AllowedHosts, h)
		}
	}
	if c.transport == "stdio" {
		return runStdio(ctx, opts, stdin, stdout, logger, shutdownGrace)
	}
	if c.allowEnvToken && opts.EnvToken == "" {
		return fmt.Errorf("-allow-env-token needs %s to be set", envToken)
	}
	if !c.allowEnvToken && opts.EnvToken != "" {
		logger.Info(envToken + " is set but ignored in http mode without -allow-env-token")
	}
	return runHTTP(ctx, c.listen, opts, logger)
}

func runHTTP(ctx context.Context, addr string, opts mcpbackend.Options, logger *slog.Logger) error {
	h, err := mcpbackend.NewHTTPHandler(opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("serving MCP over HTTP", "url", "http://"+ln.Addr().String()+opts.Path,
		"github_api", opts.GitHubAPIURL, "token_header", opts.TokenHeader, "allow_env_token", opts.AllowEnvToken)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	<-errc
	logger.Info("stopped")
	return nil
}
