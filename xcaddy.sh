#!/usr/bin/env bash
# Builds bin/caddy: Caddy with mcpgate's modules (mcp_auth, mcp_idp) from this checkout.
#
#   ./xcaddy.sh            build bin/caddy if any Go source, go.mod or go.sum changed since the last build
#   ./xcaddy.sh -f         build even if nothing changed
#
# It uses xcaddy exactly as a user outside would (`xcaddy build v2.11.9 --with
# github.com/mcpgate/mcpgate/caddymodule`, which brings both mcp_auth and mcp_idp), with the module
# replaced by this checkout. A gateway without the IdP is built the same way with
# `--with github.com/mcpgate/mcpgate/caddymodule/mcpauth` instead (docs/mcp_auth.md, "Building").
# Our module path is not published, so the Go module proxy refuses it and xcaddy's own `go get`
# would fail: the script warms the module cache from this checkout (`go mod download`), then runs
# xcaddy with the proxy list ending in "off", so that a refused lookup of our path falls through to
# the replace.
# Environment: CADDY_VERSION (default v2.11.9), XCADDY_VERSION (default v0.4.5).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
caddy_version=${CADDY_VERSION:-v2.11.9}
xcaddy_version=${XCADDY_VERSION:-v0.4.5}
out="$root/bin/caddy"
stamp="$root/bin/.caddy.stamp"
force=0
[ "${1:-}" = "-f" ] && force=1

# The fingerprint of everything that goes into the binary: versions, go.mod, go.sum, every
# non-test Go file of the module and the Caddyfiles it embeds.
fingerprint() {
	cd "$root"
	{
		echo "$caddy_version $xcaddy_version $(go env GOVERSION)"
		find . -path ./bin -prune -o -name node_modules -prune -o -name testdata -prune -o \
			\( \( -name '*.go' ! -name '*_test.go' -o -name '*.Caddyfile' \) -type f -print \) |
			LC_ALL=C sort | xargs sha256sum
		sha256sum go.mod go.sum
	} | sha256sum | cut -d' ' -f1
}

want=$(fingerprint)
if [ "$force" = 0 ] && [ -x "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	echo "xcaddy.sh: bin/caddy is up to date" >&2
	exit 0
fi

command -v go >/dev/null || { echo "xcaddy.sh: needs the Go toolchain (go) on PATH" >&2; exit 1; }

gobin=$(go env GOPATH)/bin
xcaddy="$gobin/xcaddy"
if ! [ -x "$xcaddy" ] || ! "$xcaddy" version 2>/dev/null | grep -q "${xcaddy_version}"; then
	echo "xcaddy.sh: installing xcaddy ${xcaddy_version}" >&2
	(cd "$root" && GOFLAGS=-mod=mod go install "github.com/caddyserver/xcaddy/cmd/xcaddy@${xcaddy_version}")
fi

echo "xcaddy.sh: warming the module cache" >&2
(cd "$root" && go mod download)

mkdir -p "$root/bin"
echo "xcaddy.sh: building Caddy ${caddy_version} with github.com/mcpgate/mcpgate/caddymodule" >&2
# The module proxy answers 403 for our unpublished module path, which would stop `go get`; with
# "|off" after the proxy, a refused lookup falls through to "off", which go treats as "no such
# module" and so uses the --replace. Every other module still comes from the cache or the proxy.
proxy="$(go env GOPROXY | sed 's/,direct$//; s/,/|/g')|off"
(cd "$root/bin" && GOPROXY="$proxy" GOFLAGS=-mod=mod "$xcaddy" build "$caddy_version" \
	--output "$out.tmp" \
	--with github.com/mcpgate/mcpgate/caddymodule \
	--with github.com/mcpgate/mcpgate/caddymodule/localstack \
	--replace "github.com/mcpgate/mcpgate=$root")
mv "$out.tmp" "$out"
echo "$want" >"$stamp"

"$out" list-modules 2>/dev/null | grep -E '^(http\.handlers\.mcp_|http\.mcp_auth\.)' >&2 || true
