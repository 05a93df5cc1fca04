// Package jwtverify verifies OAuth 2.0 JWT access tokens (RFC 9068 and
// provider-specific JWTs) for the mcp_auth gateway. It is a plain library and
// does not import Caddy.
//
// Skeleton: the full design notes follow in a later commit.
package jwtverify
