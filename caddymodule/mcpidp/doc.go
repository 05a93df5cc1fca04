// Package mcpidp is the mcp_idp Caddy handler (module http.handlers.mcp_idp): the
// bundled OAuth 2.1 authorization server of package idp, served by Caddy so that
// it gets automatic HTTPS. It opens the server's bbolt store once per data
// directory, or with storage postgres a PostgreSQL pool once per DSN (several
// Caddy replicas then share one state), and shares it across config reloads.
//
// It is independent of the gateway (package mcpauth): a Caddy built with only
// mcpauth leaves out the authorization server. Package caddymodule imports both.
package mcpidp
