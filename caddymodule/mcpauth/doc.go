// Package mcpauth is the mcp_auth Caddy handler (module http.handlers.mcp_auth):
// an OAuth 2.1 protected resource in front of any MCP server. It serves RFC 9728
// protected resource metadata, answers requests without a valid bearer token
// with RFC 6750 challenges that point MCP clients to that metadata, checks that
// every token was issued for this resource (RFC 8707 audience), and hands the
// backend the signed-in user's upstream (GitHub) token instead of the client's
// bearer token, which never reaches the backend.
//
// The upstream token comes from a source module in the namespace
// http.mcp_auth.token_sources: token_exchange (RFC 8693 at the authorization
// server, cached per user) or static (one token for every user, for
// single-user deployments). Each issuer's JWKS is fetched and refreshed once per
// Caddy process, shared across config reloads. Token verification itself lives
// in package jwtverify, which does not import Caddy.
//
// The package does not import the bundled authorization server (package idp):
// a Caddy built with only this package is a gateway in front of any OAuth 2.1 /
// OpenID Connect issuer. The mcp_idp handler is package mcpidp; package
// caddymodule imports both.
//
//	xcaddy build v2.11.9 --with github.com/mcpgate/mcpgate/caddymodule/mcpauth
//
// (docs/mcp_auth.md says how to build from a checkout while the module is not
// published.)
package mcpauth
