package toolpolicy

// Config is the operator's tool policy, as written in the mcp_auth JSON
// config (e.g. under "tool_policy") or produced by its Caddyfile adapter.
// Compile validates it and turns it into a Policy.
type Config struct {
	// Rules, in order. A call is decided by the rule whose Name equals the
	// call's name exactly; failing that, by the first rule (in this order)
	// whose glob matches it; failing that, by Default. Rules for methods
	// without a name (tools/list, initialize, ...) have no Name and apply to
	// every call of the method.
	Rules []Rule `json:"rules,omitempty"`

	// Default decides a call no rule matches: "allow" (the default; the
	// gateway's behaviour without a policy) or "deny". "deny" refuses a
	// tools/call, prompts/get or resources/read/subscribe/unsubscribe
	// that no rule names, and any method that is not an MCP method; the
	// protocol's own plumbing (initialize, ping, the list methods,
	// notifications, ...) stays allowed unless a rule names it.
	Default string `json:"default,omitempty"`

	// ScopeClaim is the claim the token's scopes are read from, as a dotted
	// path into the token's JSON payload (e.g. "realm_access.roles" for
	// Keycloak, "roles" for Entra ID). Its value may be a space-separated
	// string or an array of strings. It replaces the default, which reads
	// "scope" (a space-separated string) and, when that is absent, "scp"
	// (an array of strings or a string).
	ScopeClaim string `json:"scope_claim,omitempty"`

	// MaxBodyBytes bounds the request body read to decide (ReadBody). A
	// larger body is refused with ErrBodyTooLarge (413). Default 1 MiB.
	MaxBodyBytes int64 `json:"max_body_bytes,omitempty"`

	// MaxResponseBytes bounds a list response (tools/list, prompts/list,
	// resources/list) held to filter it: a plain JSON body, or one SSE
	// event while a list result is still awaited. Beyond it the filter
	// fails closed (ErrResponseTooLarge). Default 16 MiB.
	MaxResponseBytes int64 `json:"max_response_bytes,omitempty"`
}

// Rule is one line of the policy: which calls it matches and what they
// need.
type Rule struct {
	// Method is the MCP method the rule applies to: "tools/call",
	// "prompts/get", "resources/read", "resources/subscribe",
	// "resources/unsubscribe", or any other MCP method ("tools/list",
	// "completion/complete", ...). Required; unknown methods are refused
	// at load.
	Method string `json:"method"`

	// Name is the tool or prompt name (params.name) or, for the resources
	// methods, the resource URI (params.uri) the rule applies to: exact, or
	// a glob where "*" matches any run of characters (including "/") and
	// "?" any one character; there is no escaping. Required for the methods
	// above that name something ("*" for all); must be empty for the
	// others.
	Name string `json:"name,omitempty"`

	// Effect is "allow" (the default: the call is allowed when Require
	// holds) or "deny" (the call is always refused; Require must be empty).
	Effect string `json:"effect,omitempty"`

	// Require is what the token must carry for an "allow" rule. Empty: any
	// valid token.
	Require Requirement `json:"require,omitzero"`
}

// Requirement is a condition on the verified token. Every part that is set
// must hold.
type Requirement struct {
	// ScopesAll: the token must have every one of these scopes.
	ScopesAll []string `json:"scopes_all,omitempty"`

	// ScopesAny: the token must have at least one of these scopes. When it
	// has none, the step-up challenge asks for the first, so list the
	// narrowest first.
	ScopesAny []string `json:"scopes_any,omitempty"`

	// Claims: every matcher must hold. A failed claim matcher cannot be
	// fixed by asking for more scopes, so the call is refused outright.
	Claims []ClaimMatch `json:"claims,omitempty"`
}

// ClaimMatch tests one claim of the token. Exactly one of Equals, In,
// Contains, Prefix and Suffix is set. A claim's value is its string, or the
// JSON text of a number or boolean; an absent, null or object claim matches
// nothing.
type ClaimMatch struct {
	// Claim is a dotted path into the token's JSON payload: "email",
	// "groups", "realm_access.roles". Required.
	Claim string `json:"claim"`

	// Equals: the claim is a single value equal to this.
	Equals string `json:"equals,omitempty"`

	// In: the claim is a single value equal to one of these (e.g. "sub" in
	// a list of users).
	In []string `json:"in,omitempty"`

	// Contains: the claim is an array with an element equal to this (e.g.
	// "groups" contains "admins"); a single value equal to it also matches,
	// as some providers send a one-element list as a plain string.
	Contains string `json:"contains,omitempty"`

	// Prefix: the claim is a string that starts with this.
	Prefix string `json:"prefix,omitempty"`

	// Suffix: the claim is a string that ends with this. For an email
	// domain include the "@" ("@example.com"), or "evil-example.com"
	// matches too.
	Suffix string `json:"suffix,omitempty"`
}

// Effects and defaults as written in a Config.
const (
	Allow = "allow"
	Deny  = "deny"
)

// Defaults of the Config bounds.
const (
	DefaultMaxBodyBytes     = 1 << 20
	DefaultMaxResponseBytes = 16 << 20
)
