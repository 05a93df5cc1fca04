// A stdio MCP host made of the MCP TypeScript SDK's Client and StdioClientTransport: it starts
// `mcpgate-client proxy` as its server, as Claude Desktop would, lists the tools and calls one;
// waits for a line on its own stdin (the Go test expires the access token meanwhile); calls two
// tools at once on the same session; then closes the transport (EOF on the proxy's stdin).
// Each step is one JSON line on stdout.
//
// Environment: SDK_PROJECT (a directory whose node_modules holds @modelcontextprotocol/sdk),
// PROXY_BIN (the mcpgate-client binary), PROXY_ARGS (a JSON array of its arguments), and
// optionally TESTBROWSER_LOG, passed on to the proxy (and so to its test browser).
import { createRequire } from "node:module";
import { join } from "node:path";
import { createInterface } from "node:readline";

const require = createRequire(join(process.env.SDK_PROJECT, "package.json"));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");

const print = (v) => console.log(JSON.stringify(v));
const text = (res) => res.content.filter((c) => c.type === "text").map((c) => c.text).join("\n");

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

const transport = new StdioClientTransport({
  command: process.env.PROXY_BIN,
  args: JSON.parse(process.env.PROXY_ARGS),
  // The SDK passes the proxy only a few safe variables; the test browser's log is added.
  env: process.env.TESTBROWSER_LOG ? { TESTBROWSER_LOG: process.env.TESTBROWSER_LOG } : {},
  stderr: "inherit",
});
const client = new Client({ name: "proxy-test-host", version: "1.0.0" });
await client.connect(transport);
const proc = transport._process; // to read the exit status after close
const tools = await client.listTools();
const first = await client.callTool({ name: "echo", arguments: { text: "one" } });
print({
  step: "first",
  pid: transport.pid,
  server: client.getServerVersion()?.name ?? null,
  tools: tools.tools.map((t) => t.name),
  text: text(first),
});

await lines.next(); // the test expires the access token, then writes a line

const [second, repos, failed] = await Promise.all([
  client.callTool({ name: "echo", arguments: { text: "two" } }),
  client.callTool({ name: "list_repositories", arguments: {} }),
  client.callTool({ name: "fail", arguments: {} }),
]);
print({
  step: "second",
  pid: transport.pid,
  text: text(second),
  repos: text(repos),
  failIsError: failed.isError ?? false,
  failText: text(failed),
});

await client.close();
print({ step: "closed", exitCode: proc.exitCode, signal: proc.signalCode });
process.exit(0);
