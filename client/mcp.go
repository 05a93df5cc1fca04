package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// Version is the client version sent in the MCP initialize request.
const Version = "0.1.0"

// session returns the MCP session, opening it (after making sure of a token) on first use.
func (c *Client) session(ctx context.Context) (*mcpclient.Client, error) {
	c.mcpMu.Lock()
	defer c.mcpMu.Unlock()
	if c.mcp != nil {
		return c.mcp, nil
	}
	// Log in before the MCP handshake: mcp-go bounds its first probe (server/discover) by a
	// few seconds, too short for a browser login inside the transport.
	if err := c.ensureToken(ctx); err != nil {
		return nil, err
	}
	tr, err := transport.NewStreamableHTTP(c.cfg.MCPURL,
		transport.WithHTTPBasicClient(c.sessionHTTPClient()),
		transport.WithHTTPLogger(c.cfg.Logger))
	if err != nil {
		return nil, fmt.Errorf("bad MCP server URL: %w", err)
	}
	cl := mcpclient.NewClient(tr)
	if err := cl.Start(ctx); err != nil {
		return nil, clean(err)
	}
	var init mcp.InitializeRequest
	init.Params.ClientInfo = mcp.Implementation{Name: "mcpgate-client", Version: Version}
	if _, err := cl.Initialize(ctx, init); err != nil {
		_ = cl.Close()
		var te *transportError
		if errors.As(err, &te) {
			// The transport's own line already names the server and says what it answered.
			return nil, te.err
		}
		return nil, fmt.Errorf("the MCP handshake with %s failed: %w", c.cfg.MCPURL, err)
	}
	c.mcp = cl
	return cl, nil
}

// sessionHTTPClient is the HTTP client under the MCP session: the bearer transport over the
// configured one. Redirects are followed as the configured client does; each hop passes
// through the bearer transport, which adds the token only for the MCP URL's origin.
func (c *Client) sessionHTTPClient() *http.Client {
	return c.bearerHTTPClient(false)
}

// bearerHTTPClient is sessionHTTPClient with the bearer transport's perRequest setting.
func (c *Client) bearerHTTPClient(perRequest bool) *http.Client {
	base := c.mcpHTTP.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	return &http.Client{
		Transport:     &bearerTransport{c: c, base: base, perRequest: perRequest},
		CheckRedirect: c.mcpHTTP.CheckRedirect,
		Jar:           c.mcpHTTP.Jar,
	}
}

// call runs fn on the session, mapping errors to one clear line.
func call[T any](ctx context.Context, c *Client, what string, fn func(*mcpclient.Client) (T, error)) (T, error) {
	c.beginOperation()
	var zero T
	cl, err := c.session(ctx)
	if err != nil {
		return zero, clean(err)
	}
	v, err := fn(cl)
	if err != nil {
		var te *transportError
		if errors.As(err, &te) {
			return zero, te.err
		}
		return zero, fmt.Errorf("%s failed: %w", what, err)
	}
	return v, nil
}

// Ping checks that the MCP server answers.
func (c *Client) Ping(ctx context.Context) error {
	_, err := call(ctx, c, "ping", func(cl *mcpclient.Client) (struct{}, error) {
		return struct{}{}, cl.Ping(ctx)
	})
	return err
}

// Tools lists the server's tools (all pages).
func (c *Client) Tools(ctx context.Context) ([]mcp.Tool, error) {
	return call(ctx, c, "listing the tools", func(cl *mcpclient.Client) ([]mcp.Tool, error) {
		res, err := cl.ListTools(ctx, mcp.ListToolsRequest{})
		if err != nil {
			return nil, err
		}
		return res.Tools, nil
	})
}

// Call calls the tool name with args. A tool-level failure is a result with IsError set,
// not an error; an error means the call did not happen.
func (c *Client) Call(ctx context.Context, name string, args map[string]any) (*mcp.CallToolResult, error) {
	if name == "" {
		return nil, fmt.Errorf("no tool name given")
	}
	return call(ctx, c, "calling "+name, func(cl *mcpclient.Client) (*mcp.CallToolResult, error) {
		var req mcp.CallToolRequest
		req.Params.Name = name
		if args == nil {
			args = map[string]any{}
		}
		req.Params.Arguments = args
		return cl.CallTool(ctx, req)
	})
}

// ResultText joins the text contents of a tool result; other content is shown as JSON.
func ResultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, ct := range res.Content {
		if t, ok := mcp.AsTextContent(ct); ok {
			parts = append(parts, t.Text)
			continue
		}
		b, _ := json.Marshal(ct)
		parts = append(parts, string(b))
	}
	if len(parts) == 0 && res.StructuredContent != nil {
		b, _ := json.MarshalIndent(res.StructuredContent, "", "  ")
		parts = append(parts, string(b))
	}
	return strings.Join(parts, "\n")
}

// DemoTool is the tool Demo calls, as the original demo did.
const DemoTool = "list_repositories"

// Demo does what the original demo client did: ping, list the tools and call
// list_repositories, printing human-readable results to Stdout.
func (c *Client) Demo(ctx context.Context) error {
	out := c.cfg.Stdout
	if err := c.Ping(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "Ping: ok\n")
	tools, err := c.Tools(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Tools (%d):\n", len(tools))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, t := range tools {
		fmt.Fprintf(tw, "  %s\t%s\n", t.Name, firstLine(t.Description))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	res, err := c.Call(ctx, DemoTool, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s:\n%s\n", DemoTool, ResultText(res))
	if res.IsError {
		return fmt.Errorf("the tool %s reported an error", DemoTool)
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
