// Package toolpolicy is the per-tool authorization engine of the mcp_auth
// gateway: it decides, from a verified access token, which MCP tools,
// prompts and resources a request may use, and hides the others from the
// list results the user sees. It is a plain library: it does not import
// Caddy, reads no configuration files, logs nothing and keeps no state
// between requests. mcp_auth owns the Caddyfile syntax, the HTTP responses,
// the audit log and the metrics.
//
// # The model
//
// A Config is a list of rules. Each rule names an MCP method and, for the
// methods that name something, a tool or prompt name (params.name) or a
// resource URI (params.uri), exactly or with a glob ("*" any run of
// characters including "/", "?" one character). A call is decided by:
//
//  1. the rule whose name equals the call's name exactly, else
//  2. the first rule, in config order, whose glob matches it, else
//  3. the default: "allow" (the gateway's behaviour without a policy), or
//     "deny", which refuses the calls that name something (tools/call,
//     prompts/get, resources/read|subscribe|unsubscribe) and methods that
//     are not MCP methods, while the protocol's plumbing (initialize, ping,
//     the list methods, notifications) stays allowed unless a rule names it.
//
// So "deny delete_*, allow delete_draft with scope drafts" reads as it is
// written, whatever the order. A "deny" rule refuses outright. An "allow"
// rule requires every scope of scopes_all, one of scopes_any, and every
// claim matcher (equals, in, contains, prefix, suffix on a dotted claim
// path). Compile refuses what would be a mistake: an unknown method, an
// empty name pattern, a name both allowed and denied, a rule hidden behind
// an earlier "*", a bad claim path, a deny rule with requirements.
//
// Config has JSON tags for the mcp_auth JSON config; ParseRule reads one
// rule from the words of a Caddyfile line ("deny tools/call delete_*",
// "allow tools/call read_* scopes_any read admin", "allow prompts/get *
// claim groups contains staff"), so the Caddyfile adapter only loops over
// lines.
//
// Scopes come from "scope" (a space-separated string) or, when it is
// absent, "scp" (an array), as jwtverify reads them; Config.ScopeClaim
// names another claim instead (Keycloak "realm_access.roles", Entra
// "roles"), and then the challenge's scope lists those values.
//
// # What the gateway does, in order (POST requests; GET and DELETE pass)
//
//	policy, err := toolpolicy.Compile(cfg)              // at Provision; err → refuse the config
//
//	body, err := toolpolicy.ReadRequestBody(r, policy.MaxBodyBytes())
//	// Refuses a Content-Length above the bound before reading, bounds a
//	// chunked body, and puts the same bytes back in r.Body for the backend.
//	// *RequestError → answer re.Status (413) with re.ErrorBody(); other err → 400.
//
//	req, err := toolpolicy.Inspect(r.Header, body)
//	// *RequestError → re.Status (400) + re.ErrorBody(), application/json:
//	// ErrHeaderMismatch carries JSON-RPC -32020 (HeaderMismatch, MCP 2026-07-28),
//	// ErrMalformed -32600 / -32602. The backend is not called.
//
//	id, err := policy.IdentityFromJWT(bearer)           // or policy.Identity(payload),
//	// or policy.IdentityFromScopes(claims.Scopes) when !policy.NeedsClaims().
//	// Build it once per token if you can (cache it next to the verified token).
//
//	d := policy.Decide(id, req)
//	switch d.Outcome {
//	case toolpolicy.StepUp:
//		// 403, WWW-Authenticate: Bearer error="insufficient_scope",
//		//   scope="<d.Scope>", resource_metadata="<PRM URL>"
//		// d.Scope already is the union of what the call needs and what the
//		// token has (2026-07-28 step-up), so the client asks for exactly it.
//	case toolpolicy.Forbidden:
//		// d.HTTPStatus() (200 when there is a JSON-RPC error to send, 403 for
//		// notifications only) with d.ErrorBody() as application/json: a
//		// JSON-RPC error (code -32003) per request id, an array for a batch.
//		// No WWW-Authenticate: more scopes would not help.
//	}
//	// Audit/metrics: d.Outcome.String(), d.Method, d.Name (client input:
//	// quote it), d.Rule, d.Reason. Reasons name claims, never their values.
//
//	if f := policy.ResponseFilter(id, req); f != nil {
//		// The request lists tools/prompts/resources that a rule restricts.
//		r.Header.Del("Accept-Encoding")             // the filter reads plain bodies
//		fw := f.Wrap(w)                             // JSON: held, rewritten at Finish;
//		err := next.ServeHTTP(fw, r)                // SSE: filtered event by event
//		if ferr := fw.Finish(); ferr != nil { ... } // log it; JSON was answered 502,
//	}                                               // an SSE stream was cut
//	// Wrap's pieces are public (Rewrite, SSE) for a gateway that buffers or
//	// streams by itself. Never pass on an answer whose filtering failed: it
//	// could list tools the user may not call.
//
// # Reading the request
//
// Inspect reads the JSON-RPC envelope and params.name / params.uri with a
// small strict scanner (jsonscan.go); a tool's arguments are validated but
// never decoded. A member given twice, also in another letter case or
// through an escape ("Name", "n\u0061me"), is refused, because backends
// disagree on which copy wins and the gateway must decide on what the
// backend will execute; keys are otherwise matched as Go's encoding/json
// matches them (FuzzInspect checks that whatever Inspect accepts,
// encoding/json reads with the same method and name). The Mcp-Method and
// Mcp-Name headers of MCP 2026-07-28 are never trusted alone: when present
// they must agree with the body (Mcp-Name may be "=?base64?...?="
// encoded), be sent once, and describe a single request; a batch (protocol
// versions before 2025-06-18) with any refused call is refused whole.
// Responses a client sends to server-initiated requests are not calls and
// pass.
//
// # Filtering lists
//
// A tools/list (prompts/list, resources/list) result loses the tools whose
// tools/call the same policy would refuse this token (prompts/get,
// resources/read by URI); so does a server/discover result (2026-07-28),
// which may carry the tools, prompts and resources lists too. Only the items array changes; nextCursor, _meta
// and every other byte stay as the backend wrote them, so pagination works:
// a page may come back shorter, even empty, with its cursor. Lists are
// rewritten only when a rule names that kind of item or the default is
// deny. Over SSE an event is held only until its blank line;
// notifications/tools/list_changed and every other event pass as they
// end, and once the awaited list results have passed the stream is copied
// untouched. A resources/templates/list result loses the URI templates
// through which the token could read nothing: a template stands for many
// URIs that the resources/read rules may decide differently, so it is
// hidden only when the policy refuses every URI its literal prefix (the
// text before its first expression) allows, and shown whenever that cannot
// be told (template.go). Showing a template grants nothing: each
// resources/read is decided on its own URI.
//
// # What it does not do
//
// It does not verify tokens (jwtverify does), look at tool arguments,
// rate-limit, or rewrite anything but list results. It reads no header
// besides Mcp-Method and Mcp-Name.
package toolpolicy
