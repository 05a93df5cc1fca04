#!/usr/bin/env bash
# Placeholder until the caddymodule lands: this script will build bin/caddy with
# mcpgate's Caddy modules (mcp_auth, mcp_idp) from this checkout, pinned to
# Caddy v2.11.x, using only the Go module proxy.
echo "xcaddy.sh: the Caddy module has not landed yet; nothing to build" >&2
exit 1
