// Package caddymodule gathers mcpgate's Caddy modules, in the manner of Caddy's
// modules/standard: importing it registers every handler, so
//
//	xcaddy build v2.11.9 --with github.com/mcpgate/mcpgate/caddymodule
//
// builds Caddy with all three directives:
//
//   - mcp_auth (package mcpauth, module http.handlers.mcp_auth): the OAuth 2.1
//     protected resource in front of any MCP server, with its upstream token
//     sources (http.mcp_auth.token_sources.*);
//   - mcp_idp (package mcpidp, module http.handlers.mcp_idp): the bundled
//     authorization server of package idp, served by Caddy;
//   - mcp_stdio (package mcpstdio, module http.handlers.mcp_stdio): stdio MCP
//     servers, one process per signed-in user, served as streamable HTTP
//     behind mcp_auth.
//
// A gateway in front of another authorization server (Auth0, Keycloak, any
// OIDC issuer) needs only mcp_auth; building with
// github.com/mcpgate/mcpgate/caddymodule/mcpauth instead leaves out the
// authorization server and its bbolt store.
//
// The tests here exercise both handlers together: the Caddyfile adapter's
// output for every example configuration, and the Caddyfile snippets of
// docs/mcp_auth.md.
package caddymodule
