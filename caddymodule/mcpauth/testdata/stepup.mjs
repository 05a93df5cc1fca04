// The official MCP TypeScript SDK against mcp_auth with a tool policy: the SDK signs in with the
// scope the gateway's 401 asks for, lists the tools, calls one that needs a wider scope, goes
// through the SDK's step-up (403 insufficient_scope: it authorizes again with the challenge's
// scope; the login and consent are done headlessly), calls it again, and lists the tools again.
// Prints one JSON line with what it saw.
//
// Environment: MCP_URL, NODE_DIR (caddymodule/localstack/testdata/node, with node_modules),
// LOGIN_USER, LOGIN_GITHUB_TOKEN.
import { pathToFileURL } from "node:url";
import path from "node:path";

const nodeDir = process.env.NODE_DIR;
const sdk = (p) => import(pathToFileURL(path.join(nodeDir, "node_modules/@modelcontextprotocol/sdk/dist/esm", p)).href);
const { Client } = await sdk("client/index.js");
const { StreamableHTTPClientTransport } = await sdk("client/streamableHttp.js");
const { UnauthorizedError } = await sdk("client/auth.js");
const { headlessLogin } = await import(pathToFileURL(path.join(nodeDir, "headless-login.mjs")).href);

const mcpURL = new URL(process.env.MCP_URL);
const redirectURL = "http://127.0.0.1:53682/callback";

// The provider keeps no refresh token: SDK 1.32.2 answers a 403 insufficient_scope by first
// refreshing, which returns the same scopes, and then gives up ("403 after trying upscoping");
// without a refresh token it starts a new authorization with the challenge's scope.
class Provider {
  code = undefined;
  requestedScopes = [];
  #client = undefined;
  #tokens = undefined;
  #verifier = undefined;
  get redirectUrl() { return redirectURL; }
  get clientMetadata() {
    return {
      client_name: "MCP TypeScript SDK step-up e2e",
      redirect_uris: [redirectURL],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation() { return this.#client; }
  saveClientInformation(info) { this.#client = info; }
  tokens() { return this.#tokens; }
  saveTokens(tokens) { const { refresh_token, ...rest } = tokens; this.#tokens = rest; }
  saveCodeVerifier(v) { this.#verifier = v; }
  codeVerifier() { return this.#verifier; }
  async redirectToAuthorization(authorizationURL) {
    this.requestedScopes.push(authorizationURL.searchParams.get("scope"));
    const back = new URL(await headlessLogin(authorizationURL.toString(), redirectURL, {
      username: process.env.LOGIN_USER,
      githubToken: process.env.LOGIN_GITHUB_TOKEN,
    }));
    if (back.searchParams.get("error")) throw new Error(`authorization failed: ${back.searchParams.get("error")}`);
    this.code = back.searchParams.get("code");
  }
}

const provider = new Provider();
const client = new Client({ name: "mcpgate-stepup-e2e", version: "1.0.0" });
let transport = new StreamableHTTPClientTransport(mcpURL, { authProvider: provider });
try {
  await client.connect(transport);
} catch (err) {
  if (!(err instanceof UnauthorizedError)) throw err;
  await transport.finishAuth(provider.code);
  transport = new StreamableHTTPClientTransport(mcpURL, { authProvider: provider });
  await client.connect(transport);
}
const before = await client.listTools();

let steppedUp = false;
let result;
try {
  result = await client.callTool({ name: "admin_reset", arguments: {} });
} catch (err) {
  if (!(err instanceof UnauthorizedError)) throw err;
  steppedUp = true;
  await transport.finishAuth(provider.code);
  result = await client.callTool({ name: "admin_reset", arguments: {} });
}
const after = await client.listTools();
console.log(JSON.stringify({
  requestedScopes: provider.requestedScopes,
  toolsBefore: before.tools.map((t) => t.name),
  toolsAfter: after.tools.map((t) => t.name),
  steppedUp,
  isError: result.isError ?? false,
  text: result.content?.[0]?.text ?? null,
}));
await client.close();
