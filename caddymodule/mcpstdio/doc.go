// Package mcpstdio is the Caddy HTTP handler mcp_stdio (module http.handlers.mcp_stdio): it
// terminates MCP streamable HTTP and serves it from stdio MCP server subprocesses, one per
// user, so that a local-only MCP server (an npm package, a Go binary, a container that reads
// its token from the environment) can sit behind mcp_auth as a remote, multi-user server.
//
// # Files
//
//   - mcpstdio.go: the module, its configuration (every field states its default), Provision,
//     Validate, Cleanup.
//   - caddyfile.go: Caddyfile parsing only, and the directive order.
//   - http.go: the streamable HTTP side (POST, GET, DELETE), protocol versions, sessions.
//   - pool.go: which process serves a request: one per user key, limits, idle end, token change.
//   - process.go: one process: start with the bridge's own initialize, id mapping, progress
//     tokens, cancellation, server-to-client requests, graceful end.
//   - sessions.go: Mcp-Session-Id of 2025-xx clients, and the GET streams.
//   - env.go: the process environment of a request, its hash, the redaction list.
//   - stderr.go: stderr to Caddy's log, redacted and bounded.
//   - jsonrpc.go: the JSON-RPC message and the rewrites of ids and progress tokens.
//   - sysproc_*.go: process groups (the whole tree of a process ends with it).
//
// # Where the token comes from
//
// mcp_auth verifies the client's access token, sets {http.auth.user.id}, removes any copy of
// its upstream header the client sent, and puts the user's GitHub token in that header
// (X-GitHub-Token by default). mcp_stdio reads it with an env entry such as
//
//	env GITHUB_PERSONAL_ACCESS_TOKEN {http.request.header.X-GitHub-Token}
//
// We chose the header placeholder over a dedicated placeholder set by mcp_auth: it works
// today with any handler order inside a route, it needs no change to mcp_auth, and it is as
// safe, because mcp_stdio is terminal and never forwards a request header anywhere, and
// Caddy's access log records the request as it arrived (before mcp_auth added the header). The
// one requirement is that mcp_stdio runs after mcp_auth: the Caddyfile directive is ordered
// before reverse_proxy (so after mcp_auth, which is ordered before basic_auth) and needs no
// `order` line; in JSON, put mcp_auth first in the route. If upstream_header is Authorization,
// the header value is "Bearer <token>"; keep the default header for mcp_stdio.
//
// Placeholders are expanded only in env values, per request. Command, args and dir are taken
// literally, and Validate refuses an {http.*} placeholder in them: a token on a command line
// is visible to every local user in ps. The process inherits only pass_env from Caddy's
// environment (PATH, HOME, USER, LANG, LC_ALL, TMPDIR, TZ by default), never Caddy's secrets.
//
// # Processes
//
// One process per user key ({http.auth.user.iss}|{http.auth.user.id} by default: the same sub
// at two issuers is two users), started on the user's first
// request and shared by that user's concurrent requests. Requests of different users never
// share a process: the key selects the process, and a session id, a cancellation or a
// client's answer to a server request is only ever looked up among that user's processes and
// sessions. A request for which the key expands to "" is refused (403). The environment hash
// (below) is a second guard: a request is only ever served by a process started with its own
// expanded environment, so even two users whose keys collide (a user_key of the sub alone
// with several issuers, say) never run in each other's process with each other's token.
//
// The SHA-256 of the expanded environment (with the key) is kept in memory; a request whose
// hash differs (a refreshed GitHub token, a new login) retires the user's process and starts a
// new one. The retired process receives no new request; it ends when its last call is done,
// and at the latest after call_timeout + stop_timeout.
//
// Limits: max_processes in all and max_processes_per_user (retired processes that still drain
// count). At the total limit the least recently used idle process of any user is ended to
// make room; if every process is busy, or the user is at their limit, the answer is 503 with
// Retry-After and a JSON-RPC error. max_concurrent_calls bounds the calls in flight to one
// process (503 beyond). A process with no call for idle_timeout ends.
//
// Ending a process follows the MCP stdio transport: close its stdin, wait stop_timeout, SIGTERM,
// wait stop_timeout, SIGKILL, always to the process group, so that children (npx starts node,
// docker run starts the docker client) end too. Cleanup (config reload or Caddy stop) ends
// every process this way and returns only when all have exited; a reload therefore starts
// fresh processes under the new configuration rather than keeping them in a UsagePool, which
// would carry processes started with an old command or environment into the new config.
//
// # MCP semantics
//
// The bridge is the process's client. It initializes each process once, itself, asking for
// protocol 2025-11-25 with the client capabilities of client_capabilities (none by default),
// and records the InitializeResult. A client's initialize is answered from that record with
// the version the client asked for when the bridge knows it (2024-11-05, 2025-03-26,
// 2025-06-18, 2025-11-25), else 2025-11-25, and gets a new Mcp-Session-Id bound to the user;
// the client's notifications/initialized is swallowed. A request with the session id of
// another user, or an unknown or expired one, gets 404 (the client then initializes again).
// A request without a session id is served too: sessions never authenticate (mcp_auth
// verifies the token on every request), they only carry the GET stream and DELETE.
//
// MCP 2026-07-28 clients (MCP-Protocol-Version: 2026-07-28, or the version in the request's
// _meta) are stateless: no initialize, no session, no GET stream (405). Their server/discover
// is answered from the recorded InitializeResult; their results get resultType "complete";
// their Mcp-Method and Mcp-Name headers are checked against the body (-32020 on a mismatch,
// for every client that sends them).
//
// Every client request gets a fresh id on its way to the process (a number unique in the
// process's life) and its own id back in the answer, so that concurrent requests of one user,
// whose clients all number from 1, never get each other's answers. A progress token in
// _meta is replaced the same way, and the process's progress notifications go, with the
// client's token restored, to the event stream of the call they belong to: the answer is
// application/json when the result comes first and text/event-stream from the first progress
// notification on (if the client accepts it). Notifications that belong to no call (logging,
// list changes, resource updates) go to the user's GET streams; without one they are dropped.
//
// Server-to-client requests: the process's ping is answered by the bridge. Sampling,
// elicitation and roots requests (which a server sends only when client_capabilities declares
// them) are relayed with a bridge id on the event stream of the user's newest call from a
// 2025-xx client, else on the user's GET streams; the client's answer (a POST) goes back with
// the process's id. Without any stream the process gets an error at once. The capabilities are
// declared per process, not per client: declare only what every client of the site supports.
//
// Cancellation: a client's notifications/cancelled goes to the process with the mapped id, and
// the cancelled request ends at once with an error. A client whose HTTP request ends (it went
// away) makes the bridge send notifications/cancelled itself and forget the call, so nothing
// waits on an answer nobody reads.
//
// # Faults
//
// A call that gets no answer within call_timeout (restarted by each progress notification)
// ends with a JSON-RPC error (-32001), the process gets notifications/cancelled, and a ping
// checks the process: no answer within ping_timeout and it is killed. A process that does not
// read its stdin within write_timeout is killed. A process that exits, crashes or is killed
// fails every call in flight with a JSON-RPC error (-32000) and frees its place; the user's
// next request starts a new one. A stdout line longer than max_message_bytes ends the process.
// No path waits without a bound.
//
// stderr goes to Caddy's log, one entry per line with the user id, every env value that came
// from a placeholder replaced by [REDACTED] (a line cut at the read limit also loses any tail
// that could be the start of a token), lines cut at 1 KiB, at most stderr_bytes_per_minute
// per process (the rest counted in one warning). The bridge logs no token, env value or
// message body.
//
// Rejections are written as JSON-RPC error bodies with their HTTP status (what MCP clients
// read), not returned as caddyhttp.Error, so handle_errors does not run for them.
//
// # Not done
//
// Batches (removed from MCP in 2025-06-18) get 400. SSE resumability (Last-Event-ID) is not
// offered: a stream that breaks is not replayed. Progress notifications that find a slow
// client's buffer full are dropped rather than blocking the process's reader.
package mcpstdio
