// Package mcpstdio is the Caddy HTTP handler mcp_stdio (module http.handlers.mcp_stdio): it
// terminates MCP streamable HTTP and serves it from stdio MCP server subprocesses, one per
// user, so that a local-only MCP server (an npm or Docker package that reads its token from
// the environment) can sit behind mcp_auth as a remote, multi-user server.
package mcpstdio
