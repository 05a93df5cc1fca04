// The official MCP TypeScript SDK against the mcpgate stack: the SDK runs its own OAuth flow
// (discovery, dynamic registration, PKCE) through an OAuthClientProvider whose
// redirectToAuthorization completes the login headlessly and keeps the code for finishAuth.
// Then it lists the tools and calls one. Prints one JSON line with what it saw.
//
// Environment: MCP_URL, LOGIN_USER, LOGIN_GITHUB_TOKEN, NODE_EXTRA_CA_CERTS (Caddy's local CA).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { headlessLogin } from "./headless-login.mjs";

const mcpURL = new URL(process.env.MCP_URL);
// The SDK needs a redirect URI; the login stops at the redirect, so nothing listens there.
const redirectURL = "http://127.0.0.1:53682/callback";

class Provider {
  code = undefined;
  #client = undefined;
  #tokens = undefined;
  #verifier = undefined;
  get redirectUrl() { return redirectURL; }
  get clientMetadata() {
    return {
      client_name: "MCP TypeScript SDK e2e",
      redirect_uris: [redirectURL],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation() { return this.#client; }
  saveClientInformation(info) { this.#client = info; }
  tokens() { return this.#tokens; }
  saveTokens(tokens) { this.#tokens = tokens; }
  saveCodeVerifier(v) { this.#verifier = v; }
  codeVerifier() { return this.#verifier; }
  async redirectToAuthorization(authorizationURL) {
    const back = new URL(await headlessLogin(authorizationURL.toString(), redirectURL, {
      username: process.env.LOGIN_USER,
      githubToken: process.env.LOGIN_GITHUB_TOKEN,
    }));
    if (back.searchParams.get("error")) throw new Error(`authorization failed: ${back.searchParams.get("error")}`);
    this.code = back.searchParams.get("code");
  }
}

const provider = new Provider();
const client = new Client({ name: "mcpgate-e2e-ts-sdk", version: "1.0.0" });
let transport = new StreamableHTTPClientTransport(mcpURL, { authProvider: provider });
let sawUnauthorized = false;
try {
  await client.connect(transport);
} catch (err) {
  if (!(err instanceof UnauthorizedError)) throw err;
  sawUnauthorized = true;
  await transport.finishAuth(provider.code);
  transport = new StreamableHTTPClientTransport(mcpURL, { authProvider: provider });
  await client.connect(transport);
}
const tools = await client.listTools();
const result = await client.callTool({ name: "list_repositories", arguments: { per_page: 100 } });
console.log(JSON.stringify({
  sawUnauthorized,
  registeredClientId: provider.clientInformation()?.client_id ?? null,
  tools: tools.tools.map((t) => t.name),
  isError: result.isError ?? false,
  structured: result.structuredContent ?? null,
}));
await client.close();
