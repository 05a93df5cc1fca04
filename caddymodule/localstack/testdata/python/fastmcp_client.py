"""FastMCP's Python client against the mcpgate local stack.

FastMCP's OAuth helper (fastmcp.client.auth.OAuth) runs its own flow, unchanged: discovery from
the gateway's 401, dynamic client registration, PKCE, its loopback callback server, the token
request. The one thing replaced is the browser: a browser registered with the standard library's
webbrowser module, which FastMCP's redirect handler calls, prints the authorization URL as
"AUTHORIZE <url>" on stdout for the Go test to sign in with; the Go test's headless login then
follows the IdP's redirect to FastMCP's callback server. Then the script lists the tools, calls
list_repositories and prints one JSON line with what it saw. It never prints a token.

Environment:
  MCP_URL        the gateway's MCP endpoint
  TOKEN_DIR      where FastMCP keeps the registration and tokens (a FileTreeStore)
  SSL_CERT_FILE  the stack's CA, which httpx2 (FastMCP's HTTP client) trusts instead of the
                 system store
"""

import asyncio
import json
import os
import webbrowser
from pathlib import Path

import fastmcp
from fastmcp import Client
from fastmcp.client.auth import OAuth
from key_value.aio.stores.filetree import (
    FileTreeStore,
    FileTreeV1CollectionSanitizationStrategy,
    FileTreeV1KeySanitizationStrategy,
)


class HandOffBrowser(webbrowser.BaseBrowser):
    """A browser that hands the URL to whoever reads stdout instead of opening a window."""

    def open(self, url, new=0, autoraise=True):
        print("AUTHORIZE " + url, flush=True)
        return True


async def main() -> None:
    webbrowser.register("mcpgate-handoff", None, HandOffBrowser("mcpgate-handoff"), preferred=True)
    # The file store as FastMCP's own CLI (fastmcp/cli/client.py) sets it up: the keys are URLs.
    token_dir = Path(os.environ["TOKEN_DIR"])
    store = FileTreeStore(
        data_directory=token_dir,
        key_sanitization_strategy=FileTreeV1KeySanitizationStrategy(token_dir),
        collection_sanitization_strategy=FileTreeV1CollectionSanitizationStrategy(token_dir),
    )
    auth = OAuth(
        client_name="FastMCP e2e",
        token_storage=store,
        callback_timeout=120,
    )
    async with Client(os.environ["MCP_URL"], auth=auth) as client:
        tools = await client.list_tools()
        result = await client.call_tool(
            "list_repositories", {"per_page": 100}, raise_on_error=False
        )
    tokens = await auth.token_storage_adapter.get_tokens()
    client_info = auth.context.client_info
    print(
        json.dumps(
            {
                "fastmcpVersion": fastmcp.__version__,
                "registeredClientId": client_info.client_id if client_info else None,
                "redirectUris": [str(u) for u in (client_info.redirect_uris or [])] if client_info else [],
                "hasAccessToken": bool(tokens and tokens.access_token),
                "tools": [t.name for t in tools],
                "isError": result.is_error,
                "structured": result.structured_content,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(main())
