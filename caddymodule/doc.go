// Package caddymodule is the mcp_auth Caddy handler: an OAuth 2.1 protected
// resource (RFC 9728 metadata, RFC 6750 bearer challenges, RFC 8707 audience
// checks) in front of any MCP server, which hands the backend the signed-in
// user's upstream (GitHub) token instead of the client's bearer token.
//
// Build Caddy with it:
//
//	xcaddy build v2.11.9 --with github.com/mcpgate/mcpgate/caddymodule
//
// Files, one concern each: mcpauth.go (the handler), caddyfile.go (Caddyfile
// parsing), metadata.go (protected resource metadata), challenge.go
// (WWW-Authenticate and bearer extraction), keysets.go (JWKS key sets shared
// across config reloads), tokensource.go (the upstream token source interface
// and per-user cache), tokenexchange.go and statictoken.go (token sources),
// metrics.go (Prometheus metrics). Token verification itself lives in the
// jwtverify subpackage.
package caddymodule
