package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgate/mcpgate/client"
)

const usageText = `usage: mcpgate-client [flags] URL [command [args]]
       mcpgate-client [flags] proxy [flags] URL
       mcpgate-client client-metadata -url URL [-name NAME]

With no command: ping the server, list its tools and call list_repositories.

Commands:
  tools                              list the tools
  call NAME [-arg k=v ...] [-arg k:=JSON ...] [-json '{...}']
                                     call a tool (k=v is a string, k:=v a JSON value)
  login                              log in again, revoking the cached tokens it replaces
  logout                             revoke and delete the cached tokens
  status                             show the cached login (never the token)
  proxy                              be a stdio MCP server for a host such as Claude Desktop:
                                     relay its JSON-RPC on stdin/stdout to the remote server,
                                     logging in and refreshing as needed (messages on stderr)
  client-metadata -url URL [-name NAME]
                                     print the Client ID Metadata Document to host at URL
                                     (for -client-metadata-url; no MCP server URL needed)
  id-jag -idp-token-url URL -idp-client-id ID -issuer URL -resource URL -client-id ID
                                     enterprise-managed authorization: ID token -> ID-JAG at
                                     the IdP -> access token here, printed as JSON

Flags (before the URL; -json, -v may also follow the command):
`

// options are the global flags.
type options struct {
	url, clientID, clientMetadataURL, clientSecret, regToken, openWith, caCert, cacheDir string
	scopes, authParams                                                                   stringList
	callbackPort                                                                         int
	noBrowser, jsonOut, verbose, reregister                                              bool
	loginTimeout                                                                         time.Duration
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func globalFlags(o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("mcpgate-client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "", "MCP server URL (instead of the URL argument; env MCPGATE_URL)")
	fs.StringVar(&o.clientID, "client-id", "", "pre-registered OAuth client ID (default: dynamic registration)")
	fs.StringVar(&o.clientMetadataURL, "client-metadata-url", "", "https `URL` of this client's Client ID Metadata Document, used as client_id; the server must advertise support (default: not used)")
	fs.StringVar(&o.clientSecret, "client-secret", "", "pre-registered client's secret (env MCPGATE_CLIENT_SECRET; default: public client)")
	fs.StringVar(&o.regToken, "registration-token", "", "initial access token for dynamic registration (env MCPGATE_REGISTRATION_TOKEN)")
	fs.BoolVar(&o.reregister, "reregister", false, "ignore the cached client registration and register again")
	fs.Var(&o.scopes, "scope", "scope to request, repeatable or space-separated (default: the server's challenge, else its scopes_supported)")
	fs.Var(&o.authParams, "auth-param", "extra authorization request parameter `k=v`, repeatable (e.g. audience=... for Auth0)")
	fs.IntVar(&o.callbackPort, "callback-port", 0, "loopback callback port on 127.0.0.1 (default: the registered one, else ephemeral)")
	fs.BoolVar(&o.noBrowser, "no-browser", false, "do not open a browser; only print the login URL")
	fs.StringVar(&o.openWith, "open-with", "", "run `CMD` with the login URL as its last argument instead of the browser")
	fs.StringVar(&o.caCert, "ca-cert", "", "PEM `FILE` of extra trusted CA certificates (added to the system roots)")
	fs.StringVar(&o.cacheDir, "cache-dir", "", "token and registration cache (default: the user config dir + /mcpgate)")
	fs.DurationVar(&o.loginTimeout, "login-timeout", client.DefaultLoginTimeout, "how long to wait for the browser login")
	fs.BoolVar(&o.jsonOut, "json", false, "machine-readable JSON output")
	fs.BoolVar(&o.verbose, "v", false, "debug logging to stderr (never tokens)")
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	return fs
}

// run is the whole program; it returns the exit status: 0 ok, 1 failure, 2 usage.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	var o options
	fs := globalFlags(&o, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	rest := fs.Args()
	if len(rest) > 0 && rest[0] == "client-metadata" {
		return clientMetadata(rest[1:], stdout, stderr)
	}
	if len(rest) > 0 && rest[0] == "id-jag" {
		return idjagCommand(ctx, rest[1:], stdout, stderr, getenv)
	}
	if len(rest) > 0 && rest[0] == "proxy" {
		// "proxy [flags] URL", as hosts' configurations name it: the URL comes after.
		if err := fs.Parse(rest[1:]); err != nil {
			return 2
		}
		rest = fs.Args()
		if o.url == "" && len(rest) > 0 {
			o.url, rest = rest[0], rest[1:]
		}
		rest = append([]string{"proxy"}, rest...)
	} else if o.url == "" && len(rest) > 0 && strings.Contains(rest[0], "://") {
		o.url, rest = rest[0], rest[1:]
	}
	if o.url == "" {
		o.url = getenv("MCPGATE_URL")
	}
	if o.url == "" {
		fmt.Fprintln(stderr, "mcpgate-client: no MCP server URL given")
		fs.Usage()
		return 2
	}
	cmd := ""
	if len(rest) > 0 {
		cmd, rest = rest[0], rest[1:]
	}
	var callName string
	var callArgs map[string]any
	switch cmd {
	case "call":
		var err error
		callName, callArgs, err = parseCall(rest, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "mcpgate-client: %v\n", err)
			return 2
		}
	case "", "tools", "login", "logout", "status", "proxy":
		if err := fs.Parse(rest); err != nil { // trailing global flags such as -json
			return 2
		}
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "mcpgate-client: unexpected argument %q\n", fs.Arg(0))
			return 2
		}
	default:
		fmt.Fprintf(stderr, "mcpgate-client: unknown command %q\n", cmd)
		fs.Usage()
		return 2
	}
	if o.clientID != "" && o.clientMetadataURL != "" {
		fmt.Fprintln(stderr, "mcpgate-client: -client-id and -client-metadata-url exclude each other: use a pre-registered client or a client metadata document, not both")
		return 2
	}
	if o.clientMetadataURL != "" {
		if err := client.CheckClientMetadataURL(o.clientMetadataURL); err != nil {
			fmt.Fprintf(stderr, "mcpgate-client: -client-metadata-url: %v\n", err)
			return 2
		}
		if o.reregister || o.regToken != "" {
			fmt.Fprintln(stderr, "mcpgate-client: with -client-metadata-url the client never registers: -reregister and -registration-token do not apply")
			return 2
		}
	}
	if o.clientMetadataURL == "" {
		// Not with a metadata document, which names a public client and
		// never registers: these variables may be set for other servers.
		if o.clientSecret == "" {
			o.clientSecret = getenv("MCPGATE_CLIENT_SECRET")
		}
		if o.regToken == "" {
			o.regToken = getenv("MCPGATE_REGISTRATION_TOKEN")
		}
	}

	cfg := client.Config{
		MCPURL:            o.url,
		ClientID:          o.clientID,
		ClientMetadataURL: o.clientMetadataURL,
		ClientSecret:      o.clientSecret,
		RegistrationToken: o.regToken,
		ForceRegister:     o.reregister,
		Scopes:            o.scopes,
		CallbackPort:      o.callbackPort,
		NoBrowser:         o.noBrowser,
		LoginTimeout:      o.loginTimeout,
		CACertFile:        o.caCert,
		CacheDir:          o.cacheDir,
		Stdout:            stdout,
		Stderr:            stderr,
	}
	for _, kv := range o.authParams {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			fmt.Fprintf(stderr, "mcpgate-client: -auth-param %q is not k=v\n", kv)
			return 2
		}
		if cfg.AuthParams == nil {
			cfg.AuthParams = map[string]string{}
		}
		cfg.AuthParams[k] = v
	}
	if o.openWith != "" {
		cfg.OpenURL = client.OpenWith(o.openWith)
	}
	if o.verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c, err := client.New(cfg)
	if err != nil {
		return fail(stderr, err)
	}
	defer c.Close()

	switch cmd {
	case "":
		err = demo(ctx, c, o.jsonOut, stdout)
	case "tools":
		err = listTools(ctx, c, o.jsonOut, stdout)
	case "call":
		err = callTool(ctx, c, callName, callArgs, o.jsonOut, stdout, stderr)
	case "login":
		if err = c.Login(ctx); err == nil && o.jsonOut {
			err = printStatus(c, true, stdout)
		}
	case "logout":
		err = c.Logout(ctx)
	case "status":
		err = printStatus(c, o.jsonOut, stdout)
	case "proxy":
		err = c.Proxy(ctx, stdin, stdout, client.ProxyOptions{})
	}
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}

// clientMetadata is the client-metadata command: it prints the Client ID Metadata Document to
// host at -url. Exit 0, or 2 for a usage error.
func clientMetadata(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mcpgate-client client-metadata", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var u, name string
	fs.StringVar(&u, "url", "", "https `URL` the document will be served at; it becomes the client_id (required)")
	fs.StringVar(&name, "name", "mcpgate-client", "client_name shown on consent pages")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mcpgate-client client-metadata -url URL [-name NAME]")
		fmt.Fprintln(stderr, "\nPrints the JSON document to serve at URL; then pass -client-metadata-url URL.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mcpgate-client: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if u == "" {
		fmt.Fprintln(stderr, "mcpgate-client: client-metadata needs -url, the https URL the document will be served at")
		return 2
	}
	doc, err := client.NewClientMetadataDocument(u, name)
	if err != nil {
		fmt.Fprintf(stderr, "mcpgate-client: %v\n", err)
		return 2
	}
	if err := writeJSON(stdout, doc); err != nil {
		return fail(stderr, err)
	}
	return 0
}

func fail(stderr io.Writer, err error) int {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	fmt.Fprintf(stderr, "mcpgate-client: %s\n", msg)
	return 1
}

// parseCall parses "NAME [-arg k=v ...] [-json '{...}']".
func parseCall(args []string, stderr io.Writer) (string, map[string]any, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return "", nil, errors.New("call needs a tool name: call NAME [-arg k=v ...] [-json '{...}']")
	}
	name := args[0]
	fs := flag.NewFlagSet("call", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var kv stringList
	var raw string
	fs.Var(&kv, "arg", "argument k=v (string) or k:=v (JSON value); repeatable")
	fs.StringVar(&raw, "json", "", "all arguments as one JSON object")
	if err := fs.Parse(args[1:]); err != nil {
		return "", nil, fmt.Errorf("bad call arguments: %v", err)
	}
	if fs.NArg() > 0 {
		return "", nil, fmt.Errorf("unexpected argument %q after the call flags", fs.Arg(0))
	}
	out := map[string]any{}
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &out); err != nil || out == nil {
			return "", nil, fmt.Errorf("-json must be a JSON object: %v", err)
		}
	}
	for _, a := range kv {
		if k, v, ok := strings.Cut(a, ":="); ok && k != "" && !strings.Contains(k, "=") {
			var val any
			if err := json.Unmarshal([]byte(v), &val); err != nil {
				return "", nil, fmt.Errorf("-arg %s: the value is not JSON: %v", k, err)
			}
			out[k] = val
			continue
		}
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return "", nil, fmt.Errorf("-arg %q is not k=v", a)
		}
		out[k] = v
	}
	return name, out, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func listTools(ctx context.Context, c *client.Client, jsonOut bool, stdout io.Writer) error {
	tools, err := c.Tools(ctx)
	if err != nil {
		return err
	}
	if jsonOut {
		return writeJSON(stdout, tools)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, t := range tools {
		desc, _, _ := strings.Cut(strings.TrimSpace(t.Description), "\n")
		fmt.Fprintf(tw, "%s\t%s\n", t.Name, desc)
	}
	return tw.Flush()
}

func callTool(ctx context.Context, c *client.Client, name string, args map[string]any, jsonOut bool, stdout, stderr io.Writer) error {
	res, err := c.Call(ctx, name, args)
	if err != nil {
		return err
	}
	if jsonOut {
		if err := writeJSON(stdout, res); err != nil {
			return err
		}
	} else if !res.IsError {
		fmt.Fprintln(stdout, client.ResultText(res))
	}
	if res.IsError {
		if !jsonOut {
			fmt.Fprintln(stderr, client.ResultText(res))
		}
		return fmt.Errorf("the tool %s reported an error", name)
	}
	return nil
}

func demo(ctx context.Context, c *client.Client, jsonOut bool, stdout io.Writer) error {
	if !jsonOut {
		return c.Demo(ctx)
	}
	if err := c.Ping(ctx); err != nil {
		return err
	}
	tools, err := c.Tools(ctx)
	if err != nil {
		return err
	}
	res, err := c.Call(ctx, client.DemoTool, nil)
	if err != nil {
		return err
	}
	return writeJSON(stdout, struct {
		Ping   bool                `json:"ping"`
		Tools  []mcp.Tool          `json:"tools"`
		Result *mcp.CallToolResult `json:"list_repositories"`
	}{true, tools, res})
}

func printStatus(c *client.Client, jsonOut bool, stdout io.Writer) error {
	st, err := c.Status()
	if err != nil {
		return err
	}
	if jsonOut {
		return writeJSON(stdout, st)
	}
	if !st.LoggedIn {
		fmt.Fprintf(stdout, "Not logged in to %s\n", st.MCPURL)
		return nil
	}
	scopes := strings.Join(st.Scopes, " ")
	if scopes == "" {
		scopes = "(none)"
	}
	expiry := "no expiry given"
	if !st.Expiry.IsZero() {
		left := time.Until(st.Expiry).Round(time.Second)
		if st.Expired {
			expiry = fmt.Sprintf("%s (expired)", st.Expiry.Local().Format(time.DateTime))
		} else {
			expiry = fmt.Sprintf("%s (in %s)", st.Expiry.Local().Format(time.DateTime), left)
		}
	}
	refresh := "no"
	if st.Refreshable {
		refresh = "yes"
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "Logged in to %s\n", st.MCPURL)
	fmt.Fprintf(tw, "  issuer:\t%s\n", st.Issuer)
	fmt.Fprintf(tw, "  resource:\t%s\n", st.Resource)
	fmt.Fprintf(tw, "  client:\t%s\n", st.ClientID)
	fmt.Fprintf(tw, "  scopes:\t%s\n", scopes)
	fmt.Fprintf(tw, "  expires:\t%s\n", expiry)
	fmt.Fprintf(tw, "  refresh token:\t%s\n", refresh)
	return tw.Flush()
}
